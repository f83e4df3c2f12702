#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// The listening side: HTTP/1.1 with pipelining assistance, one `ReferenceHandler` per connection.
enum ReferenceServer {
    /// Serves on 127.0.0.1:`port` until the process ends; `threads` event loops, one per core by default.
    static func run(port: Int, upstream: Upstream, threads: Int?) async throws {
        let threads = threads ?? System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true)
                    try channel.pipeline.syncOperations.addHandler(ReferenceHandler(upstream: upstream))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        print("nio-reference listening on \(server.localAddress.map { "\($0)" } ?? "?"), upstream \(upstream.host):\(upstream.port), \(threads) threads")
        fflush(nil)  // every output stream: the log is a file, so print is buffered
        try await server.closeFuture.get()
    }
}
