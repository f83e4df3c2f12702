import AsyncHTTPClient
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import NIOPosix
import Testing

@testable import GatehouseServer

/// Counts the reads that reach the network side of the pipeline.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite("Fast path handler on an embedded channel")
struct FastPathHandlerTests {
    /// A handler whose cache belongs to no loop of this channel, so every request goes on.
    static func handler(in directory: TemporaryDirectory) throws -> FastPathHandler {
        let configuration = TestGatehouse.configuration(in: directory) { $0.redis.url = "redis://127.0.0.1:1" }
        let dependencies = try GatehouseDependencies.open(configuration)
        let cache = try #require(dependencies.localCache)
        let gateway = Gateway(configuration: configuration, authenticator: SessionAuthenticator(store: dependencies.store, cookie: configuration.cookie), client: .shared)
        let pool = UpstreamConnectionPool(group: MultiThreadedEventLoopGroup.singleton, configuration: configuration.proxy)
        return FastPathHandler(settings: .init(cache: cache, gateway: gateway, upstreams: pool, logger: Logger(label: "test")))
    }

    @Test("no reading while the client does not read its answers (a pipelining client cannot grow the buffers)")
    func writabilityPausesReads() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let counter = ReadCounter()
        let channel = EmbeddedChannel(handlers: [counter, try Self.handler(in: directory)])
        channel.isWritable = false
        channel.read()
        #expect(counter.reads == 0)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 1)
        channel.read()
        #expect(counter.reads == 2)
    }

    @Test("requests the handler does not answer reach Hummingbird unchanged, in order")
    func passesOthersOn() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let channel = EmbeddedChannel(handlers: [try Self.handler(in: directory)])
        let head = HTTPRequest(method: .get, scheme: "http", authority: "x", path: "/auth/verify", headerFields: [.cookie: "gatehouse_session=\(SessionToken.generate().cookieValue)"])
        try channel.writeInbound(HTTPRequestPart.head(head))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        guard case .head(let passed) = try channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("head not passed on")
            return
        }
        #expect(passed == head)
        guard case .end = try channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("end not passed on")
            return
        }
    }

    @Test("only GET|HEAD /auth/verify and /auth/forward, with or without a query, are verify endpoints")
    func verifyPaths() {
        for path in ["/auth/verify", "/auth/verify?x=1", "/auth/forward", "/auth/forward?"] {
            #expect(GatewayPolicy.isVerifyEndpoint(path, method: .get), "\(path)")
            #expect(GatewayPolicy.isVerifyEndpoint(path, method: .head), "\(path)")
            #expect(!GatewayPolicy.isVerifyEndpoint(path, method: .post), "\(path)")
        }
        for path in ["/auth/verifyx", "/auth/verify/", "/auth/forwarded", "/auth/me", "/", "/app/auth/verify"] {
            #expect(!GatewayPolicy.isVerifyEndpoint(path, method: .get), "\(path)")
        }
    }
}
