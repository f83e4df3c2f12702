import Crypto
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle

/// A real HTTP server on a free loopback port standing in for an application behind the
/// gateway. It answers every request with what it received (method, target, headers, body
/// length and SHA-256, the connection it came on), so tests assert exactly what the upstream saw; a few paths
/// misbehave on purpose (under `/public/`: `big/N`, `slow-head`, `slow-body`, `redirect`, `hop`).
public enum EchoUpstream {
    /// Runs `body` with the upstream listening; returns its result.
    public static func with<T: Sendable>(_ body: @Sendable (_ port: Int) async throws -> T) async throws -> T {
        let router = Router(context: EchoRequestContext.self)
        router.get("/public/big/{size}") { _, context -> Response in
            let size = try context.parameters.require("size", as: Int.self)
            return Response(status: .ok, headers: [.contentLength: String(size), .contentType: "application/octet-stream"], body: ResponseBody { writer in
                let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
                var remaining = size
                while remaining > 0 {
                    let part = min(remaining, chunk.readableBytes)
                    try await writer.write(chunk.getSlice(at: 0, length: part)!)
                    remaining -= part
                }
                try await writer.finish(nil)
            })
        }
        router.get("/public/slow-head") { _, _ -> Response in
            try await Task.sleep(for: .seconds(3))
            return Response(status: .ok)
        }
        router.get("/public/slow-body") { _, _ -> Response in
            Response(status: .ok, headers: [.contentLength: "10"], body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "12345"))
                try await Task.sleep(for: .seconds(5))
                try await writer.write(ByteBuffer(string: "67890"))
                try await writer.finish(nil)
            })
        }
        router.get("/public/redirect") { _, _ -> Response in
            Response(status: .found, headers: [HTTPField.Name("Location")!: "/elsewhere"])
        }
        router.get("/public/hop") { _, _ -> Response in
            Response(status: .ok, headers: [.connection: "X-Private", HTTPField.Name("X-Private")!: "1", HTTPField.Name("Keep-Alive")!: "timeout=5", HTTPField.Name("X-Public")!: "2"])
        }
        // The trie router does not backtrack: `/public/…` needs its own catch-all.
        for path in ["**", "/public/**"] {
            for method in [HTTPRequest.Method.get, .head, .post, .put, .delete] {
                router.on(RouterPath(stringLiteral: path), method: method, use: echo)
            }
        }
        router.on("/", method: .get, use: echo)
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "echo-upstream")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade { head, _, _ in
                // WebSocket echo: the first message lists the upgrade request's headers.
                guard head.path?.split(separator: "?").first?.hasSuffix("/ws") == true else { return .dontUpgrade }
                let headers = head.headerFields.map { [$0.name.rawName, $0.value] }
                let first = String(decoding: try JSONSerialization.data(withJSONObject: ["target": head.path ?? "", "headers": headers]), as: UTF8.self)
                return .upgrade([:]) { inbound, outbound, _ in
                    try await outbound.write(.text(first))
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        switch message {
                        case .text(let text): try await outbound.write(.text(text))
                        case .binary(let buffer): try await outbound.write(.binary(buffer))
                        }
                    }
                }
            },
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            let serviceGroup = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
            group.addTask { try await serviceGroup.run() }
            var iterator = stream.makeAsyncIterator()
            let port = await iterator.next() ?? 0
            let result = try await body(port)
            await serviceGroup.triggerGracefulShutdown()
            group.cancelAll()
            return result
        }
    }

    @Sendable static func echo(_ request: Request, context: EchoRequestContext) async throws -> Response {
        var hasher = SHA256()
        var length = 0
        for try await buffer in request.body {
            buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            length += buffer.readableBytes
        }
        let digest = SHA256Hex.hex(hasher.finalize())
        let headers = request.headers.map { [$0.name.rawName, $0.value] } + [["Host", request.head.authority ?? ""]]
        let object: [String: Any] = [
            "method": request.method.rawValue, "target": request.head.path ?? "", "headers": headers,
            "body_length": length, "body_sha256": digest, "peer": context.peer,
        ]
        let data = try JSONSerialization.data(withJSONObject: object)
        return Response(status: .ok, headers: [.contentType: "application/json", HTTPField.Name("Set-Cookie")!: "upstream=1; Path=/"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// What the echo upstream says it received.
public struct EchoedRequest: Sendable {
    /// Request method.
    public let method: String
    /// Request target (path and query) as received.
    public let target: String
    /// Headers as received, in order, with `Host` last.
    public let headers: [(String, String)]
    /// Body byte count.
    public let bodyLength: Int
    /// Body SHA-256, hex.
    public let bodySHA256: String
    /// The connection it came on, as the upstream saw its peer (`ip:port`).
    public let peer: String

    /// Parses the echo body; `nil` when the response did not come from the echo route.
    public init?(_ result: HTTPResult) {
        let json = result.json
        guard let method = json["method"] as? String, let target = json["target"] as? String, let headers = json["headers"] as? [[String]] else { return nil }
        self.method = method
        self.target = target
        self.headers = headers.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        self.bodyLength = json["body_length"] as? Int ?? -1
        self.bodySHA256 = json["body_sha256"] as? String ?? ""
        self.peer = json["peer"] as? String ?? ""
    }

    /// Every value of a header (case-insensitive name).
    public func values(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}
