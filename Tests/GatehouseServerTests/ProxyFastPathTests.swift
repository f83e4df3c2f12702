import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import GatehouseServer

/// The event-loop proxy of ``FastPathHandler`` (SPEC §3): order, retries, revocation. The
/// reverse proxy suite runs every header rule through it as well (`SessionBackend.redis`).
@Suite("Event-loop proxy", .serialized)
struct ProxyFastPathTests {
    @Test("pipelined requests come back in order when event-loop proxying, verify answers and router answers mix")
    func pipelinedOrder() async throws {
        try await TestGatehouse.withUpstream(sessions: .redis) { api, gatehouse, _ in
            let token = try #require(try await api.signup("pipeline@example.com", ReverseProxyTests.password).sessionToken())
            let port = try #require((api as? SocketTarget)?.port)
            let connection = try KeepAliveConnection(port: port)
            let cookie = "Cookie: gatehouse_session=\(token)\r\n"
            // The event loop takes requests while Hummingbird has no response outstanding, one
            // at a time with the rest held, and answers every decision it can render (refusals
            // included); from the first router request on (a body), the router answers the
            // rest of the batch.
            let requests = [
                "GET /app/first HTTP/1.1\r\nHost: x\r\n\(cookie)\r\n",
                "GET /public/redirect HTTP/1.1\r\nHost: x\r\n\r\n",
                "HEAD /public/head HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /auth/verify HTTP/1.1\r\nHost: x\r\n\(cookie)\r\n",
                "GET /app/anonymous HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n",
                "GET /api/last?n=1 HTTP/1.1\r\nHost: x\r\n\(cookie)\r\n",
                "POST /public/posted HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                "GET /auth/verify HTTP/1.1\r\nHost: x\r\n\(cookie)\r\n",
            ]
            // Order is checked on every batch. The cache may still decline the session in the
            // first batches (a read meeting the signup's own invalidation, a lease not yet
            // current): then the router answers all of it, in order too. Repeat until the
            // event loop took the first request, so that the batch really mixes both paths.
            var mixed = false
            for _ in 0..<20 where !mixed {
                let responses = try await onThread {
                    try connection.write(requests.joined())
                    return try requests.map { request in try connection.readResponse(answeringHead: request.hasPrefix("HEAD")) }
                }
                #expect(responses.map(\.status) == [200, 302, 200, 200, 401, 200, 200, 200])
                #expect(responses[0].body.contains("\"target\":\"\\/app\\/first\""))
                #expect(responses[2].head.lowercased().contains("content-length: "))
                #expect(responses[3].head.lowercased().contains("x-user-id: "))
                #expect(responses[5].body.contains("\"target\":\"\\/v2\\/last?n=1\""))
                #expect(responses[6].body.contains("\"method\":\"POST\"") && responses[6].body.contains("\"body_length\":5"))
                let log = gatehouse.logs.text
                let ids = responses.map { Self.requestId($0.head) ?? "-" }
                guard log.contains("request_id=\(ids[0]) served=fast_path") else { continue }
                mixed = true
                for (index, served) in [(1, "fast_path"), (2, "fast_path"), (3, "fast_path"), (4, "fast_path"), (5, "fast_path"), (6, "router"), (7, "router")] {
                    #expect(log.contains("request_id=\(ids[index]) served=\(served)"), "request \(index)")
                }
            }
            #expect(mixed, "the event loop never took the batch's first request")
            // And a request on its own afterwards is the event loop's again.
            let after = try await onThread { try connection.send("GET", "/public/after") }
            let afterId = try #require(Self.requestId(after.head))
            #expect(gatehouse.logs.text.contains("request_id=\(afterId) served=fast_path"))
        }
    }

    @Test("a kept-alive upstream connection that closes when reused: the GET is retried once on a new connection, not failed")
    func staleConnectionRetried() async throws {
        let upstream = try await ClosingUpstream.start()
        defer { upstream.stop() }
        try await TestGatehouse.run(.live, configure: {
            $0.upstreams = ["app": UpstreamTarget("http://127.0.0.1:\(upstream.port)")!]
            $0.routes = [RouteConfiguration(prefix: "/", upstream: "app", auth: .none)]
        }) { api, gatehouse in
            let port = try #require((api as? SocketTarget)?.port)
            let connection = try KeepAliveConnection(port: port)
            // One client connection, so one event loop and one pool: each GET after the first
            // takes the pooled connection, which the upstream closes on reading it, and is
            // retried once on a new connection (never on another pooled one).
            let responses = try await onThread { try (0..<4).map { _ in try connection.send("GET", "/x") } }
            #expect(responses.map(\.status) == [200, 200, 200, 200])
            #expect(upstream.connections.withLockedValue { $0 } == 4)
            let last = try #require(Self.requestId(responses[3].head))
            #expect(gatehouse.logs.text.contains("request_id=\(last) served=fast_path"))
        }
    }

    @Test(
        "a pooled upstream connection is not reused after a HEAD, 204 or 304 that declared a body: bytes the upstream sends later never become another request's response",
        arguments: ["HEAD /x", "GET /no-content", "GET /not-modified"]
    )
    func impossibleBodyNotReused(first: String) async throws {
        let upstream = try await DesyncUpstream.start()
        defer { upstream.stop() }
        try await TestGatehouse.run(.live, configure: {
            $0.upstreams = ["app": UpstreamTarget("http://127.0.0.1:\(upstream.port)")!]
            $0.routes = [RouteConfiguration(prefix: "/", upstream: "app", auth: .none)]
        }) { api, _ in
            let port = try #require((api as? SocketTarget)?.port)
            // One client connection, so one event loop and one upstream pool.
            let connection = try KeepAliveConnection(port: port)
            let (answered, next) = try await onThread {
                try connection.write("\(first) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                // Whatever it declares, that answer has no body.
                let answered = try connection.readResponse(answeringHead: true)
                try connection.write("GET /next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return (answered, try connection.readResponse())
            }
            #expect([200, 204, 304].contains(answered.status))
            #expect(!next.body.contains("SMUGGLED"), "\(first): the next request got the upstream's late bytes")
            #expect(next.body == "genuine")
            #expect(upstream.connections.withLockedValue { $0 } == 2)
        }
    }

    @Test(
        "HTTP/1.0 requests get HTTP/1.0 framing (never chunked) and a closed connection unless they asked for keep-alive, on both paths",
        arguments: SessionBackend.allCases
    )
    func http10(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let token = try #require(try await api.signup("http10@example.com", ReverseProxyTests.password).sessionToken())
            let cookie = "Cookie: gatehouse_session=\(token)\r\n"
            // Event loop: a public proxied GET, a protected one, a verify; router: the API.
            for (path, extra) in [("/public/x", ""), ("/app/x", cookie), ("/auth/verify", cookie), ("/auth/me", cookie)] {
                for keepAlive in [false, true] {
                    let connection = try KeepAliveConnection(port: port)
                    let request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\(extra)\(keepAlive ? "Connection: keep-alive\r\n" : "")\r\n"
                    let (first, second) = try await onThread { () -> ((status: Int, head: String, body: String), Result<Int, any Error>) in
                        try connection.write(request)
                        let first = try connection.readResponse()
                        let second = Result { () throws -> Int in
                            try connection.write(request)
                            return try connection.readResponse().status
                        }
                        return (first, second)
                    }
                    let head = first.head.lowercased()
                    #expect(first.status == 200, "\(path)")
                    #expect(!head.contains("transfer-encoding"), "\(path): chunked to an HTTP/1.0 client")
                    #expect(head.contains("content-length:"), "\(path)")
                    if keepAlive {
                        #expect((try? second.get()) == 200, "\(path): keep-alive was asked, the connection closed")
                        #expect(head.contains("connection: keep-alive"), "\(path)")
                    } else {
                        #expect((try? second.get()) == nil, "\(path): HTTP/1.0 without keep-alive, the connection stayed open")
                    }
                }
            }
        }
    }

    @Test("logout on instance A, then a proxied GET on instance B right after is refused, 1,000 times")
    func revocationThroughProxy() async throws {
        try await EchoUpstream.with { appPort in
            let instances = try await TwoInstances.start(
                environment: ["GATEHOUSE_LOG_LEVEL": "notice"],
                extra: singleRouteYAML(appPort: appPort, prefix: "/", auth: "required")
            )
            defer { instances.terminate() }
            let userId = try await instances.signupUser("proxied@example.com")
            let outcome = try await onThread { () -> (unwarmed: Int, forwarded: Int, accepted: Int) in
                let client = try KeepAliveConnection(address: instances.second.address)
                var (unwarmed, forwarded, accepted) = (0, 0, 0)
                for _ in 0..<2 {
                    let tokens = try instances.insertSessions(500, userId: userId)
                    // Each session is now answered from the memory of this connection's loop.
                    guard try instances.warmNow(tokens, on: client) else {
                        unwarmed += 1
                        continue
                    }
                    // Opened after the warming, which on a loaded machine can outlast client.header_timeout.
                    let revoker = try KeepAliveConnection(address: instances.first.address)
                    for token in tokens {
                        if try client.send("GET", "/page", cookie: token).status == 200 { forwarded += 1 }
                        _ = try revoker.send("POST", "/auth/logout", cookie: token)
                        if try client.send("GET", "/page", cookie: token).status != 401 { accepted += 1 }
                    }
                }
                return (unwarmed, forwarded, accepted)
            }
            #expect(outcome.unwarmed == 0)
            #expect(outcome.forwarded == 1000)
            #expect(outcome.accepted == 0, "revoked sessions forwarded by B after logout on A returned")
        }
    }

    @Test("a request with two Host headers is refused with 400 on both paths and reaches no upstream", arguments: SessionBackend.allCases)
    func duplicateHost(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, gatehouse, _ in
            let token = try #require(try await api.signup("hosts@example.com", ReverseProxyTests.password).sessionToken())
            let port = try #require((api as? SocketTarget)?.port)
            for (path, cookie) in [("/public/x", ""), ("/app/x", "Cookie: gatehouse_session=\(token)\r\n")] {
                let response = try await rawHTTP(port: port, "GET \(path) HTTP/1.1\r\nHost: app.example.com\r\nHost: admin.example.com\r\n\(cookie)Connection: close\r\n\r\n")
                #expect(response.hasPrefix("HTTP/1.1 400"), "\(path): \(response.prefix(40))")
                #expect(response.contains("invalid_request") && !response.contains("\"target\""))
            }
            #expect(!gatehouse.logs.text.contains("served=fast_path status=400"))
        }
    }

    @Test("a client that stops reading its download holds the upstream back: the process does not buffer the body")
    func slowReaderBackpressure() async throws {
        try await GatehouseProcess.withPublicEcho { gatehouse in
            let size = 96 << 20
            let connection = try KeepAliveConnection(address: gatehouse.address)
            // Warm up the pools and buffers, so the baseline is a server that has proxied.
            #expect(try await onThread { try connection.send("GET", "/public/small").status } == 200)
            let baseline = gatehouse.residentKiB
            let head = try await onThread { () -> String in
                try connection.write("GET /public/big/\(size) HTTP/1.1\r\nHost: x\r\n\r\n")
                return try connection.readHead()
            }
            #expect(head.hasPrefix("HTTP/1.1 200"))
            // Nobody reads for 2 s: the socket buffers fill, then the upstream must wait.
            try await Task.sleep(for: .seconds(2))
            let growthMiB = (gatehouse.residentKiB - baseline) / 1024
            #expect(growthMiB < 32, "RSS grew by \(growthMiB) MiB while the client read nothing of \(size >> 20) MiB")
            #expect(try await onThread { try connection.discard(size) } == size)
            // The event loop served it (the log line follows the last bytes, from the log thread).
            #expect(await eventually { gatehouse.log.contains("path=/public/big/\(size) request_id=") && gatehouse.log.contains("served=fast_path status=200") })
        }
    }

    @Test("a log reader that stops reading does not stall the server: requests keep being answered, and the lines follow once it reads")
    func stalledLogReader() async throws {
        try await EchoUpstream.with { appPort in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let config = try writeTestConfiguration(in: directory, extra: singleRouteYAML(appPort: appPort, prefix: "/", auth: "none"))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: GatehouseProcess.binaryPath)
            process.arguments = ["serve", "--config", config]
            process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "GATEHOUSE_LOG_LEVEL": "info"]
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = pipe
            try process.run()
            defer {
                // A server stalled on its log cannot shut down gracefully: killed after 5 s.
                process.terminate(grace: .seconds(5))
            }
            // Read until the server says where it listens, then never read again: the pipe
            // (64 KiB) fills after a few hundred request lines.
            let address = try await onThread { () -> String? in
                var text = ""
                while true {
                    if let range = text.range(of: #"address=[0-9.]+:[0-9]+"#, options: .regularExpression) {
                        return String(text[range].dropFirst("address=".count))
                    }
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { return nil }
                    text += String(decoding: chunk, as: UTF8.self)
                }
            }
            let listening = try #require(address, "gatehouse did not start")
            let answered = try await onThread { () -> Int in
                let connection = try KeepAliveConnection(address: listening)
                var answered = 0
                // About 200 bytes of log each: 1 MB, fifteen times what the pipe holds.
                for index in 0..<5_000 where try connection.send("GET", "/page/\(index)").status == 200 {
                    answered += 1
                }
                return answered
            }
            #expect(answered == 5_000)
            // Reading again, every line arrives (fewer than the 10,000 the output queues
            // before it drops and counts), and the server shuts down cleanly.
            let reader = Task { try await onThread { String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) } }
            process.terminate()
            let rest = try await reader.value
            #expect(rest.components(separatedBy: " served=fast_path").count - 1 == 5_000)
        }
    }

    static func requestId(_ head: String) -> String? {
        head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-request-id:") }
            .map { String($0.dropFirst("x-request-id:".count)).trimmingCharacters(in: .whitespaces) }
    }
}

@Suite("Proxy header rules and request classification")
struct ProxyHeaderRuleTests {
    @Test(
        "only requests without a body, an upgrade or a Connection option other than keep-alive are taken on the event loop",
        arguments: [
            ([:], true), (["Connection": "keep-alive"], true), (["Connection": "Keep-Alive"], true), (["Content-Length": "0"], true),
            (["Connection": "close"], false), (["Connection": "upgrade"], false), (["Upgrade": "websocket"], false),
            (["Content-Length": "1"], false), (["Transfer-Encoding": "chunked"], false), (["Accept": "*/*", "Content-Length": "12"], false),
        ] as [([String: String], Bool)]
    )
    func plainBodiless(headers: [String: String], expected: Bool) {
        let fields = HTTPFields(headers.map { HTTPField(name: HTTPField.Name($0.key)!, value: $0.value) })
        #expect(FastPathHandler.isPlainBodiless(fields) == expected)
    }

    @Test("identity headers are recognised in every spelling, and only those")
    func identitySpellings() {
        let identity = IdentityFields(IdentityHeaderNames())
        // What CGI/WSGI/Rack/PHP (punctuation to `_`, upper case) and Node (lower case) read
        // as the same header.
        for name in ["x-user-id", "x_user_id", "x-user_id", "x.user.id", "xuserid", "x-user-email", "x_user_email", "x-user-e-mail", "x.user_email"] {
            #expect(identity.isSpelling(name), "\(name)")
        }
        for name in ["x-user-idx", "x-user", "user-id", "x-user-ids", "x-user-emails", ""] {
            #expect(!identity.isSpelling(name), "\(name)")
        }
    }

    @Test("headers upstreams route or trust on pass only from trusted proxies, in any spelling")
    func trustedOnlyHeaders() {
        let incoming = HTTPFields([
            ("X-Original-URL", "/admin"), ("x_rewrite_url", "/admin"), ("X-Real-IP", "10.0.0.1"), ("True-Client-IP", "10.0.0.1"),
            ("X-Forwarded-Port", "443"), ("X-Forwarded-Prefix", "/admin"), ("X-Forwarded-Uri", "/admin"), ("X-Forwarded-Method", "DELETE"),
            ("X.Forwarded.Path", "/admin"), ("Forwarded", "for=10.0.0.1"), ("X-HTTP-Method-Override", "DELETE"), ("Accept", "*/*"),
        ].map { HTTPField(name: HTTPField.Name($0.0)!, value: $0.1) })
        let identity = IdentityFields(IdentityHeaderNames())
        func forwarded(trusted: Bool) -> [String] {
            let facts = ConnectionFacts(peer: "192.0.2.7", trustedProxies: trusted ? [CIDR("192.0.2.0/24")!] : [])
            let client = ForwardingContext(connection: facts, headers: incoming, authority: "app.example.com")
            return ProxyHeaders.upstreamRequest(incoming, host: "app.example.com", identity: identity, user: nil, cookieName: "gatehouse_session", client: client)
                .map(\.name)
        }
        let untrusted = forwarded(trusted: false)
        #expect(untrusted.contains("Accept"))
        for (name, _) in incoming.map({ ($0.name.rawName, $0.value) }) where name != "Accept" {
            #expect(!untrusted.contains(name), "\(name) from an untrusted peer")
        }
        let trusted = forwarded(trusted: true)
        for name in ["X-Original-URL", "x_rewrite_url", "X-Real-IP", "True-Client-IP", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-HTTP-Method-Override"] {
            #expect(trusted.contains(name), "\(name) from a trusted proxy")
        }
    }

    @Test("upstream responses lose hop-by-hop headers and those Connection names; X-Request-Id is ours; Date only when missing")
    func responseHeaders() {
        var upstream = HTTPHeaders()
        upstream.add(name: "Connection", value: "keep-alive, X-Private ")
        upstream.add(name: "X-Private", value: "1")
        upstream.add(name: "Keep-Alive", value: "timeout=5")
        upstream.add(name: "Transfer-Encoding", value: "chunked")
        upstream.add(name: "X-Request-Id", value: "theirs")
        upstream.add(name: "Set-Cookie", value: "a=1")
        upstream.add(name: "Set-Cookie", value: "b=2")
        let headers = ProxyHeaders.clientResponse(upstream, requestId: "ours", date: "Mon, 30 Nov 2026 00:00:00 GMT")
        #expect(headers.map { $0.name.lowercased() } == ["set-cookie", "set-cookie", "x-request-id", "date"])
        #expect(headers["X-Request-Id"] == ["ours"])
        upstream.add(name: "date", value: "Sun, 29 Nov 2026 00:00:00 GMT")
        #expect(ProxyHeaders.clientResponse(upstream, requestId: "ours", date: "Mon, 30 Nov 2026 00:00:00 GMT")["Date"] == ["Sun, 29 Nov 2026 00:00:00 GMT"])
    }

    @Test("request ids of a connection are 32 lowercase hex digits and never repeat")
    func requestIds() {
        var sequence = RequestIdSequence()
        let ids = (0..<10_000).map { _ in sequence.next() }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.utf8.count == 32 && $0.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } })
        // Two connections start from different random prefixes.
        var other = RequestIdSequence()
        #expect(other.next().prefix(16) != ids[0].prefix(16))
        #expect(ForwardingContext.newRequestId().utf8.count == 32)
    }
}

/// A test upstream on a free loopback port whose connections run the handlers `configure`
/// adds; it counts the connections it accepted.
final class ScriptedUpstream: Sendable {
    let port: Int
    let connections: NIOLockedValueBox<Int>
    private let channel: any Channel

    private init(port: Int, channel: any Channel, connections: NIOLockedValueBox<Int>) {
        self.port = port
        self.channel = channel
        self.connections = connections
    }

    static func start(_ configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> ScriptedUpstream {
        let connections = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture { try configure(channel) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedUpstream(port: channel.localAddress?.port ?? 0, channel: channel, connections: connections)
    }

    func stop() {
        channel.close(promise: nil)
    }
}

/// A plain HTTP/1.1 upstream that answers the first request on each connection (kept alive)
/// and closes the connection when a second one arrives on it.
enum ClosingUpstream {
    static func start() async throws -> ScriptedUpstream {
        try await ScriptedUpstream.start { channel in
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(AnswerOnce())
        }
    }

    private final class AnswerOnce: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private var requests = 0

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            requests += 1
            guard requests == 1 else {
                context.close(promise: nil)
                return
            }
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "5"])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "first")))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

/// An upstream that answers a HEAD, `/no-content` (204) or `/not-modified` (304) with a
/// `Content-Length` and no body, then, on the next request of that connection, sends those
/// bytes first: a whole response of its own (`SMUGGLED`), then the genuine one. Any other
/// first request of a connection is answered `genuine`.
enum DesyncUpstream {
    static let smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
    static let genuine = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine"

    static func start() async throws -> ScriptedUpstream {
        try await ScriptedUpstream.start { channel in try channel.pipeline.syncOperations.addHandler(Answer()) }
    }

    private final class Answer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var received = ""
        private var owed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            while let end = received.range(of: "\r\n\r\n") {
                let request = received[..<end.lowerBound]
                received = String(received[end.upperBound...])
                var answer: String
                if owed {
                    answer = DesyncUpstream.smuggled + DesyncUpstream.genuine
                    owed = false
                } else if request.hasPrefix("HEAD ") {
                    answer = "HTTP/1.1 200 OK\r\nContent-Length: \(DesyncUpstream.smuggled.utf8.count)\r\n\r\n"
                    owed = true
                } else if request.hasPrefix("GET /no-content ") {
                    answer = "HTTP/1.1 204 No Content\r\nContent-Length: \(DesyncUpstream.smuggled.utf8.count)\r\n\r\n"
                    owed = true
                } else if request.hasPrefix("GET /not-modified ") {
                    answer = "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
                    owed = true
                } else {
                    answer = DesyncUpstream.genuine
                }
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
            }
        }
    }
}
