// swift-tools-version:6.1
import PackageDescription

// The bare SwiftNIO ceiling the benchmark measures Gatehouse against (SPEC §3): an
// HTTP/1.1 server that answers GET /ok itself and forwards everything else to one upstream.
// Built only by full benchmark runs, apart from Gatehouse's own package.
let package = Package(
    name: "NIOReference",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "nio-reference",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
