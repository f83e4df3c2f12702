import AsyncHTTPClient
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
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
        let gateway = Gateway(configuration: configuration, authenticator: SessionAuthenticator(store: dependencies.store, cookie: configuration.cookie), client: .shared, pages: dependencies.pages, metrics: dependencies.metrics)
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

    /// An embedded channel as a server connection's: Hummingbird's HTTP/1 ⇄ HTTP types codec,
    /// then the handler (which writes its answers below the codec).
    static func connection(in directory: TemporaryDirectory) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([HTTP1ToHTTPServerCodec(secure: false), try Self.handler(in: directory)])
        return channel
    }

    @Test("with the codec in the pipeline, the handler answers what it can decide (an anonymous verify: 401 with Location) and passes the API on unchanged")
    func passesOthersOn() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let channel = try Self.connection(in: directory)
        // An anonymous verify is decided without a store: answered here, never passed on.
        var verify = HTTPHeaders()
        verify.add(name: "Host", value: "x")
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/auth/verify", headers: verify)))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil, "the verify reached Hummingbird: the fast path is off")
        guard case .head(let answer) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no answer written")
            return
        }
        #expect(answer.status == .unauthorized)
        #expect(answer.headers["Location"].first?.hasPrefix("/auth/login") == true)
        while try channel.readOutbound(as: HTTPServerResponsePart.self) != nil {}
        // Gatehouse's own API is the router's: passed on unchanged, in order.
        var me = HTTPHeaders()
        me.add(name: "Host", value: "x")
        me.add(name: "Cookie", value: "gatehouse_session=\(SessionToken.generate().cookieValue)")
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/auth/me", headers: me)))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let passed) = try channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("head not passed on")
            return
        }
        #expect(passed.path == "/auth/me" && passed.method == .get && passed.headerFields[.cookie] != nil)
        guard case .end = try channel.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("end not passed on")
            return
        }
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
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
