import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import Testing

/// Where a proxied request's session is checked, and so who forwards it: SQLite alone
/// (``ReverseProxyMiddleware`` behind the router), or Redis with the in-process cache (the
/// event-loop fast path). Routes with `auth: none` take the fast path with either.
extension HTTPField.Name {
    static let xRequestIdName = HTTPField.Name("X-Request-Id")!
}

enum SessionBackend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case redis

    var description: String { rawValue }
    /// Who forwards a request with a valid session, as the request log line says.
    /// The event loop answers protected routes with either store (it looks sessions up itself).
    var servedProtected: String { "fast_path" }
}

extension TestGatehouse {
    /// A gateway in front of a live echo upstream: `/public/` open, `/api` (prefix stripped)
    /// and everything else behind a session; with `.redis`, a real redis-server of its own.
    static func withUpstream(
        sessions: SessionBackend = .sqlite,
        configure: @escaping @Sendable (inout GatehouseConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (any HTTPTarget, TestGatehouse, Int) async throws -> Void
    ) async throws {
        let redis = sessions == .redis ? try await RedisServer() : nil
        defer { redis?.shutdown() }
        let redisURL = redis?.url() ?? ""
        try await EchoUpstream.with { port in
            try await run(.live, configure: {
                $0.redis.url = redisURL
                $0.upstreams = ["app": "http://127.0.0.1:\(port)", "api": "http://127.0.0.1:\(port)/v2/", "down": "http://127.0.0.1:1"].mapValues { UpstreamTarget($0)! }
                $0.routes = [
                    RouteConfiguration(prefix: "/public/", upstream: "app", auth: .none),
                    RouteConfiguration(prefix: "/api", upstream: "api", auth: .required, stripPrefix: true),
                    RouteConfiguration(prefix: "/down/", upstream: "down", auth: .none),
                    RouteConfiguration(prefix: "/", upstream: "app", auth: .required),
                ]
                configure(&$0)
            }) { api, gatehouse in
                try await body(api, gatehouse, port)
            }
        }
    }
}

extension HTTPTarget {
    func request(_ method: HTTPRequest.Method = .get, _ path: String, cookie: String? = nil, headers: [String: String] = [:], body: String? = nil) async throws -> HTTPResult {
        var fields = HTTPFields()
        for (name, value) in headers { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        if let cookie { fields.append(HTTPField(name: .cookie, value: "theme=dark; gatehouse_session=\(cookie); lang=en")) }
        return try await send(method, path, headers: fields, body: body)
    }
}

@Suite("Reverse proxy (SPEC §2.3)", .serialized)
struct ReverseProxyTests {
    static let password = "proxy test password"

    @Test("public routes forward without identity; protected ones carry X-User-Id and X-User-Email", arguments: SessionBackend.allCases)
    func publicAndProtected(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, gatehouse, _ in
            let publicResponse = try await api.request(.get, "/public/page?x=1")
            #expect(publicResponse.status == 200)
            let seen = try #require(EchoedRequest(publicResponse))
            #expect(seen.target == "/public/page?x=1")
            #expect(seen.values("X-User-Id").isEmpty)
            let publicId = try #require(publicResponse.headers[HTTPField.Name("X-Request-Id")!])
            #expect(gatehouse.logs.text.contains("request_id=\(publicId) served=fast_path"))

            let signup = try await api.signup("proxy@example.com", Self.password)
            let token = try #require(signup.sessionToken())
            let userId = try #require(signup.json["id"] as? String)
            var response = try await api.request(.get, "/app/page?q=a%20b", cookie: token, headers: ["Host": "app.example.com"])
            // With Redis, the first read of a session just written can meet its own write's
            // invalidation, which the cache rightly refuses: the router answers that one. Ask
            // again until the event loop does (each request is a new connection, on either loop).
            for _ in 0..<50 where sessions == .redis && !gatehouse.logs.text.contains("request_id=\(response.headers[.xRequestIdName] ?? "-") served=fast_path") {
                response = try await api.request(.get, "/app/page?q=a%20b", cookie: token, headers: ["Host": "app.example.com"])
            }
            #expect(response.status == 200)
            let upstream = try #require(EchoedRequest(response))
            #expect(upstream.target == "/app/page?q=a%20b")
            #expect(upstream.values("X-User-Id") == [userId])
            #expect(upstream.values("X-User-Email") == ["proxy@example.com"])
            // Gatehouse's cookie never reaches the upstream; the others do.
            #expect(upstream.values("Cookie") == ["theme=dark; lang=en"])
            #expect(upstream.values("X-Forwarded-For") == ["127.0.0.1"])
            #expect(upstream.values("X-Forwarded-Proto") == ["http"])
            #expect(upstream.values("X-Forwarded-Host") == ["app.example.com"])
            #expect(upstream.values("Host") == ["app.example.com"])
            let requestId = try #require(response.headers[HTTPField.Name("X-Request-Id")!])
            #expect(upstream.values("X-Request-Id") == [requestId])
            #expect(requestId.count == 32)
            #expect(response.setCookies == ["upstream=1; Path=/"])
            // The suite's other tests rely on this: with Redis the fast path forwarded it.
            #expect(gatehouse.logs.text.contains("request_id=\(requestId) served=\(sessions.servedProtected)"))
        }
    }

    @Test("without a session: 302 to the login page with rd for browsers, 401 JSON for everything else", arguments: SessionBackend.allCases)
    func unauthenticated(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            let browser = try await api.request(.get, "/app/page?x=1", headers: ["Accept": "text/html,application/xhtml+xml"])
            #expect(browser.status == 302)
            #expect(browser.headers[HTTPField.Name("Location")!] == "/auth/login?rd=/app/page%3Fx%3D1")
            let apiCall = try await api.request(.get, "/app/page", headers: ["Accept": "application/json"])
            #expect(apiCall.status == 401)
            #expect(apiCall.json["error"] as? String == "unauthenticated")
            let post = try await api.request(.post, "/app/page", headers: ["Accept": "text/html", "Content-Type": "text/plain"], body: "x")
            #expect(post.status == 401)
            let garbage = try await api.request(.get, "/app/page", cookie: "garbage")
            #expect(garbage.status == 401)
        }
    }

    @Test("client-sent identity headers never reach the upstream, in any spelling, on any route", arguments: SessionBackend.allCases)
    func spoofedIdentity(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            let token = try #require(try await api.signup("spoof@example.com", Self.password).sessionToken())
            let spoofs = [
                "X-User-Id": "admin", "x-user-id": "admin2", "X_User_Id": "admin3", "X-USER-ID": "admin4", "x_user_id": "admin5",
                "X-User-Email": "root@example.com", "x_user_email": "root2@example.com", "X-USER_EMAIL": "root3@example.com",
                // What PHP, Rack and WSGI also read as the same header: other punctuation, or none.
                "X.User.Id": "admin6", "XUserId": "admin7", "x.user_email": "root4@example.com", "X-User-E-mail": "root5@example.com",
            ]
            for (name, value) in spoofs {
                for (path, cookie) in [("/public/x", nil), ("/app/x", token), ("/api/x", token)] as [(String, String?)] {
                    let response = try await api.request(.get, path, cookie: cookie, headers: [name: value])
                    #expect(response.status == 200)
                    let upstream = try #require(EchoedRequest(response))
                    let identity = upstream.headers.filter { ["xuserid", "xuseremail"].contains($0.0.lowercased().filter { $0.isLetter || $0.isNumber }) }
                    #expect(!identity.contains { $0.1 == value }, "\(name) reached \(path)")
                    #expect(identity.count == (cookie == nil ? 0 : 2))
                }
            }
        }
    }

    @Test("identity header names are configurable, and client copies of the configured names are removed", arguments: SessionBackend.allCases)
    func configurableIdentityNames(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions, configure: { $0.identityHeaders = IdentityHeaderNames(userId: "X-Auth-User", email: "X-Auth-Mail") }) { api, _, _ in
            let signup = try await api.signup("names@example.com", Self.password)
            let token = try #require(signup.sessionToken())
            let response = try await api.request(.get, "/app/x", cookie: token, headers: ["X_Auth_User": "admin", "x-auth-mail": "root@example.com"])
            let upstream = try #require(EchoedRequest(response))
            #expect(upstream.values("X-Auth-User") == [signup.json["id"] as? String])
            #expect(upstream.values("X-Auth-Mail") == ["names@example.com"])
            #expect(upstream.values("X_Auth_User").isEmpty)
            #expect(upstream.values("X-User-Id").isEmpty)
            let verify = try await api.request(.get, "/auth/verify", cookie: token)
            #expect(verify.headers[HTTPField.Name("X-Auth-User")!] == signup.json["id"] as? String)
        }
    }

    @Test(
        "path tricks never reach a route they do not belong to",
        arguments: ["/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin", "/public/.%2e/admin", "//public/../admin", "/public/./../admin", "/public/x/../../admin", "/admin?/public/", "/admin#/public/"]
    )
    func pathTricks(path: String) async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let response = try await api.request(.get, path)
            // 401: routed under "/" (needs a session); 400: a target no route may see.
            #expect([400, 401].contains(response.status))
            let token = try #require(try await api.signup("path@example.com", Self.password).sessionToken())
            let authenticated = try await api.request(.get, path, cookie: token)
            if authenticated.status == 200 {
                let upstream = try #require(EchoedRequest(authenticated))
                #expect(upstream.target.hasPrefix("/admin"))
            } else {
                #expect(authenticated.status == 400)
            }
        }
    }

    @Test("encoded slashes and backslashes in the path are refused with 400", arguments: ["/public/..%2fadmin", "/public%2f..%2fadmin", "/public/..%5cadmin", "/public/%00"])
    func encodedSlashes(path: String) async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let response = try await api.request(.get, path)
            #expect(response.status == 400)
            #expect(response.json["error"] as? String == "invalid_path")
        }
    }

    @Test(
        "a path parameter cannot take a request out of a stricter route: /admin;x/secret (Tomcat's /admin/secret) is refused on both paths, never forwarded by the open route",
        arguments: SessionBackend.allCases
    )
    func pathParameters(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions, configure: {
            $0.routes = [RouteConfiguration(prefix: "/", upstream: "app", auth: .none), RouteConfiguration(prefix: "/admin/", upstream: "app", auth: .required)]
        }) { api, _, _ in
            // The control: the open route does forward.
            #expect(try await api.request(.get, "/welcome").status == 200)
            #expect(try await api.request(.get, "/admin/secret").status == 401)
            for path in ["/admin;x/secret", "/admin;/secret", "/ADMIN/../admin;jsessionid=1/secret", "/x/..;/admin/secret"] {
                let response = try await api.request(.get, path)
                #expect(response.status == 400, "\(path)")
                #expect(response.json["error"] as? String == "invalid_path", "\(path)")
            }
        }
    }

    @Test(
        "a host-specific route cannot be missed by a trailing dot, case or port, and with proxy.case_insensitive_paths not by the path's case, on both paths",
        arguments: SessionBackend.allCases
    )
    func hostAndCase(sessions: SessionBackend) async throws {
        let configure: @Sendable (inout GatehouseConfiguration) -> Void = { configuration in
            configuration.routes = [
                RouteConfiguration(prefix: "/", upstream: "app", auth: .none),
                RouteConfiguration(prefix: "/", host: "admin.example.com", upstream: "app", auth: .required),
                RouteConfiguration(prefix: "/admin/", upstream: "app", auth: .required),
            ]
            configuration.proxy.caseInsensitivePaths = true
        }
        try await TestGatehouse.withUpstream(sessions: sessions, configure: configure) { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let connection = try KeepAliveConnection(port: port)
            func status(_ path: String, host: String) async throws -> Int {
                try await onThread {
                    try connection.write("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
                    return try connection.readResponse().status
                }
            }
            // The control: another host is open.
            #expect(try await status("/x", host: "www.example.com") == 200)
            for host in ["admin.example.com", "admin.example.com.", "ADMIN.Example.com:8080", "Admin.example.com.:443"] {
                #expect(try await status("/x", host: host) == 401, "\(host)")
            }
            #expect(try await status("/public-page", host: "www.example.com") == 200)
            for path in ["/admin/x", "/ADMIN/x", "/Admin/secret"] {
                #expect(try await status(path, host: "www.example.com") == 401, "\(path)")
            }
        }
    }

    @Test("strip_prefix and an upstream base path combine", arguments: SessionBackend.allCases)
    func stripPrefix(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            let token = try #require(try await api.signup("strip@example.com", Self.password).sessionToken())
            let upstream = try #require(EchoedRequest(try await api.request(.get, "/api/users?page=2", cookie: token)))
            #expect(upstream.target == "/v2/users?page=2")
        }
    }

    @Test("request bodies stream to the upstream byte for byte; redirects pass through unfollowed")
    func bodiesAndRedirects() async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let body = String(repeating: "0123456789abcdef", count: 10_000)
            let response = try await api.request(.post, "/public/upload", headers: ["Content-Type": "application/octet-stream"], body: body)
            let upstream = try #require(EchoedRequest(response))
            #expect(upstream.method == "POST")
            #expect(upstream.bodyLength == body.utf8.count)
            #expect(upstream.bodySHA256 == SHA256Hex.of(body))
            let redirect = try await api.request(.get, "/public/redirect")
            #expect(redirect.status == 302)
            #expect(redirect.headers[HTTPField.Name("Location")!] == "/elsewhere")
        }
    }

    @Test("hop-by-hop headers are stripped both ways", arguments: SessionBackend.allCases)
    func hopByHop(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            let response = try await api.request(.get, "/public/x", headers: ["Connection": "X-Secret", "X-Secret": "1", "Keep-Alive": "timeout=1", "TE": "trailers", "X-Fine": "yes"])
            let upstream = try #require(EchoedRequest(response))
            #expect(upstream.values("X-Secret").isEmpty)
            #expect(upstream.values("Keep-Alive").isEmpty)
            #expect(upstream.values("TE").isEmpty)
            #expect(upstream.values("X-Fine") == ["yes"])
            let hop = try await api.request(.get, "/public/hop")
            #expect(hop.headers[HTTPField.Name("X-Private")!] == nil)
            #expect(hop.headers[HTTPField.Name("Keep-Alive")!] == nil)
            #expect(hop.headers[HTTPField.Name("X-Public")!] == "2")
        }
    }

    @Test("X-Forwarded-*, X-Request-Id and the headers upstreams route or trust on are believed only from trusted proxies, on both paths", arguments: SessionBackend.allCases)
    func trustedProxies(sessions: SessionBackend) async throws {
        let spoofed = ["X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "X-Request-Id": "client-chosen-id"]
        let routing = [
            "X-Original-URL": "/admin", "X-Rewrite-URL": "/admin", "X-Real-IP": "6.6.6.6", "True-Client-IP": "6.6.6.6", "X-Forwarded-Port": "443",
            "X-Forwarded-Prefix": "/admin", "X-Forwarded-Uri": "/admin", "X-Forwarded-Method": "DELETE", "Forwarded": "for=6.6.6.6",
        ]
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            let token = try #require(try await api.signup("trust@example.com", Self.password).sessionToken())
            for (path, cookie) in [("/public/x", nil), ("/app/x", token)] as [(String, String?)] {
                let upstream = try #require(EchoedRequest(try await api.request(.get, path, cookie: cookie, headers: spoofed.merging(routing) { a, _ in a })))
                #expect(upstream.values("X-Forwarded-For") == ["127.0.0.1"])
                #expect(upstream.values("X-Forwarded-Proto") == ["http"])
                #expect(upstream.values("X-Forwarded-Host") != ["evil.example"])
                #expect(upstream.values("X-Request-Id") != ["client-chosen-id"])
                for name in routing.keys { #expect(upstream.values(name).isEmpty, "\(name) reached the upstream on \(path)") }
            }
        }
        try await TestGatehouse.withUpstream(sessions: sessions, configure: { $0.trustedProxies = [CIDR("127.0.0.0/8")!] }) { api, _, _ in
            let upstream = try #require(EchoedRequest(try await api.request(.get, "/public/x", headers: routing)))
            for (name, value) in routing where name != "Forwarded" { #expect(upstream.values(name) == [value], "\(name) from a trusted proxy") }
        }
        try await TestGatehouse.withUpstream(configure: { $0.trustedProxies = [CIDR("127.0.0.0/8")!] }) { api, _, _ in
            let response = try await api.request(.get, "/public/x", headers: spoofed)
            let upstream = try #require(EchoedRequest(response))
            #expect(upstream.values("X-Forwarded-For") == ["6.6.6.6, 127.0.0.1"])
            #expect(upstream.values("X-Forwarded-Proto") == ["https"])
            #expect(upstream.values("X-Forwarded-Host") == ["evil.example"])
            #expect(upstream.values("X-Request-Id") == ["client-chosen-id"])
            #expect(response.headers[HTTPField.Name("X-Request-Id")!] == "client-chosen-id")
        }
    }

    @Test("upstream down is 502, too slow is 504, a stalled body closes the connection: never a hang")
    func upstreamFailures() async throws {
        // Short upstream timeouts for this test alone: elsewhere a loaded machine's first
        // exchange with a just-started upstream can take longer than 800 ms (seen: a 504).
        try await TestGatehouse.withUpstream(configure: {
            $0.proxy.responseTimeout = .milliseconds(800)
            $0.proxy.idleTimeout = .milliseconds(800)
        }) { api, gatehouse, _ in
            let down = try await api.request(.get, "/down/x")
            #expect(down.status == 502)
            #expect(down.json["error"] as? String == "upstream_unavailable")
            // The upstream's head is a 200 after 3 s: a 504 means Gatehouse stopped waiting
            // at its response timeout (800 ms) instead.
            let slow = try await api.request(.get, "/public/slow-head")
            #expect(slow.status == 504)
            #expect(slow.json["error"] as? String == "upstream_timeout")
            let stalled = try? await api.request(.get, "/public/slow-body")
            #expect(stalled == nil || stalled?.body.count != 10)
            #expect(gatehouse.logs.text.contains("upstream failed"))
        }
    }

    @Test("a login-redirect round trip lands back on the page", arguments: SessionBackend.allCases)
    func loginRoundTrip(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            _ = try await api.signup("trip@example.com", Self.password)
            let first = try await api.request(.get, "/app/reports?year=2026", headers: ["Accept": "text/html"])
            #expect(first.status == 302)
            let location = try #require(first.headers[HTTPField.Name("Location")!])
            #expect(location.hasPrefix("/auth/login?rd="))
            let rdQuery = String(location.dropFirst("/auth/login".count))
            let form = try await PageForm.open(api, location)
            let login = try await form.post(api, "/auth/login" + rdQuery, [("email", "trip@example.com"), ("password", Self.password)])
            #expect(login.status == 303)
            let next = try #require(login.headers[HTTPField.Name("Location")!])
            #expect(next == "/app/reports?year=2026")
            let token = try #require(login.sessionToken())
            let page = try await api.request(.get, next, cookie: token, headers: ["Accept": "text/html"])
            #expect(page.status == 200)
            #expect(EchoedRequest(page)?.target == "/app/reports?year=2026")
            // A hostile rd falls back to the gateway's root.
            let hostile = try await form.post(api, "/auth/login?rd=%2F%2Fevil.com", [("email", "trip@example.com"), ("password", Self.password)])
            #expect(hostile.headers[HTTPField.Name("Location")!] == "/")
        }
    }
}
