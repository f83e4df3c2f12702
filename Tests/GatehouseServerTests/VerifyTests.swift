import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import Testing

@Suite("Verify endpoints (SPEC §2.2, I5)", .serialized)
struct VerifyTests {
    static let password = "verify test password"

    @Test("/auth/verify: 200 with identity headers, else 401 with Location to login and rd from a trusted X-Original-URL")
    func verify() async throws {
        try await TestGatehouse.run(.live, configure: {
            $0.trustedProxies = [CIDR("127.0.0.1")!]
            $0.allowedRedirectHosts = ["app.example.com"]
        }) { api, _ in
            let signup = try await api.signup("verify@example.com", Self.password)
            let token = try #require(signup.sessionToken())
            for method in [HTTPRequest.Method.get, .head] {
                let ok = try await api.request(method, "/auth/verify", cookie: token)
                #expect(ok.status == 200)
                #expect(ok.headers[HTTPField.Name("X-User-Id")!] == signup.json["id"] as? String)
                #expect(ok.headers[HTTPField.Name("X-User-Email")!] == "verify@example.com")
            }
            let denied = try await api.request(.get, "/auth/verify", headers: ["X-Original-URL": "https://app.example.com/reports?x=1"])
            #expect(denied.status == 401)
            #expect(denied.headers[HTTPField.Name("Location")!] == "/auth/login?rd=https%3A//app.example.com/reports%3Fx%3D1")
            #expect(denied.headers[HTTPField.Name("X-User-Id")!] == nil)
            let sameHost = try await api.request(.get, "/auth/verify", headers: ["X-Original-URL": "http://gate.example/a?b=1", "Host": "gate.example"])
            #expect(sameHost.headers[HTTPField.Name("Location")!] == "/auth/login?rd=/a%3Fb%3D1")
            let hostile = try await api.request(.get, "/auth/verify", headers: ["X-Original-URL": "https://evil.example/"])
            #expect(hostile.headers[HTTPField.Name("Location")!] == "/auth/login")
            let browser = try await api.request(.get, "/auth/verify", headers: ["Accept": "text/html"])
            #expect(browser.status == 401)
        }
    }

    @Test("/auth/verify ignores X-Original-URL from an untrusted peer")
    func untrustedOriginal() async throws {
        try await TestGatehouse.run(.live, configure: { $0.allowedRedirectHosts = ["app.example.com"] }) { api, _ in
            let denied = try await api.request(.get, "/auth/verify", headers: ["X-Original-URL": "https://app.example.com/x"])
            #expect(denied.status == 401)
            #expect(denied.headers[HTTPField.Name("Location")!] == "/auth/login")
        }
    }

    @Test("/auth/forward: 200 with identity; 302 for browser navigations; 401 otherwise; X-Forwarded-* only from trusted peers")
    func forward() async throws {
        try await TestGatehouse.run(.live, configure: {
            $0.trustedProxies = [CIDR("127.0.0.1")!]
            $0.allowedRedirectHosts = ["app.example.com"]
        }) { api, _ in
            let token = try #require(try await api.signup("forward@example.com", Self.password).sessionToken())
            let ok = try await api.request(.get, "/auth/forward", cookie: token, headers: ["X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/x"])
            #expect(ok.status == 200)
            #expect(ok.headers[HTTPField.Name("X-User-Email")!] == "forward@example.com")
            let browser = try await api.request(.get, "/auth/forward", headers: [
                "Accept": "text/html", "X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com",
                "X-Forwarded-Uri": "/dash?tab=2",
            ])
            #expect(browser.status == 302)
            #expect(browser.headers[HTTPField.Name("Location")!] == "/auth/login?rd=https%3A//app.example.com/dash%3Ftab%3D2")
            let post = try await api.request(.get, "/auth/forward", headers: ["Accept": "text/html", "X-Forwarded-Method": "POST"])
            #expect(post.status == 401)
            let apiCall = try await api.request(.get, "/auth/forward", headers: ["Accept": "application/json"])
            #expect(apiCall.status == 401)
        }
        try await TestGatehouse.run(.live, configure: { $0.allowedRedirectHosts = ["app.example.com"] }) { api, _ in
            // Untrusted peer: its X-Forwarded-Method is ignored (GET applies) and rd is not taken from it.
            let browser = try await api.request(.get, "/auth/forward", headers: ["Accept": "text/html", "X-Forwarded-Method": "POST", "X-Forwarded-Host": "app.example.com"])
            #expect(browser.status == 302)
            #expect(browser.headers[HTTPField.Name("Location")!] == "/auth/login")
        }
    }

    @Test(
        "verify endpoints and an auth: required proxied route never answer 2xx without the user's own X-User-Id, whatever the cookies and headers (fuzzed)",
        arguments: SessionBackend.allCases
    )
    func fuzz(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions, configure: { $0.trustedProxies = [CIDR("127.0.0.1")!] }) { api, gatehouse, _ in
            if sessions == .redis { #expect(await eventually { gatehouse.cache.isTrusted }) }
            let signup = try await api.signup("fuzz@example.com", Self.password)
            let token = try #require(signup.sessionToken())
            let userId = try #require(signup.json["id"] as? String)
            let revoked = try #require(try await api.login("fuzz@example.com", Self.password).sessionToken())
            _ = try await api.logout(cookie: revoked)
            var generator = SystemRandomNumberGenerator()
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/%;,. \"")
            func randomText(_ length: Int) -> String { String((0..<length).map { _ in alphabet.randomElement(using: &generator)! }) }
            let headerNames = ["X-User-Id", "x_user_id", "X-User-Email", "X-Original-URL", "X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host", "Accept", "Authorization"]
            let paths = ["/auth/verify", "/auth/forward", "/app/page"]
            var accepted = [0, 0, 0]
            var proxiedIds: [String] = []
            for round in 0..<600 {
                var headers: [String: String] = [:]
                // Cookie kind, path and method vary independently, so that every kind meets every path.
                let cookieKind = round % 6
                let pathIndex = (round / 6) % paths.count
                let proxied = pathIndex == 2
                // HEAD only on the verify endpoints: a proxied HEAD has no echo body to inspect.
                let method: HTTPRequest.Method = !proxied && (round / 18).isMultiple(of: 2) ? .head : .get
                var cookie: String
                switch cookieKind {
                case 0: cookie = "gatehouse_session=\(randomText(43))"
                case 1: cookie = "gatehouse_session=\(SessionToken.generate().cookieValue)"
                case 2: cookie = "gatehouse_session=\(revoked)"
                case 3: cookie = "gatehouse_session=\(token)"
                case 4: cookie = "gatehouse_session=\(token.dropLast())"
                default: cookie = "\(randomText(Int.random(in: 0...80, using: &generator)))"
                }
                if round % 7 == 0 { cookie = "gatehouse_session=\(revoked); " + cookie }
                headers["Cookie"] = cookie.trimmingCharacters(in: .whitespaces)
                for name in headerNames where Bool.random(using: &generator) {
                    headers[name] = randomText(Int.random(in: 1...40, using: &generator)).trimmingCharacters(in: .whitespaces)
                }
                var fields = HTTPFields()
                for (name, value) in headers where !value.isEmpty { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
                let response = try await api.send(method, paths[pathIndex], headers: fields, body: nil)
                let context = "\(method) \(paths[pathIndex]) \(headers) -> \(response.status)"
                if (200..<300).contains(response.status) {
                    accepted[pathIndex] += 1
                    #expect(cookie.contains(token), "\(context)")
                    if proxied {
                        #expect(EchoedRequest(response)?.values("X-User-Id") == [userId], "\(context)")
                        proxiedIds += response.headers[.xRequestIdName].map { [$0] } ?? []
                    } else {
                        #expect(response.headers[HTTPField.Name("X-User-Id")!] == userId, "\(context)")
                    }
                } else {
                    #expect((proxied ? [302, 400, 401] : [302, 401]).contains(response.status), "\(context)")
                    #expect(response.headers[HTTPField.Name("X-User-Id")!] == nil, "\(context)")
                    #expect(EchoedRequest(response) == nil, "\(context)")
                }
            }
            // Rounds carrying the live token were accepted on every path: the checks above could fail.
            #expect(accepted.allSatisfy { $0 > 10 }, "\(accepted)")
            // The event-loop fast path forwarded live sessions (with Redis, through its in-process cache).
            let logs = gatehouse.logs.text
            #expect(proxiedIds.contains { logs.contains("request_id=\($0) served=fast_path") })
        }
    }

    @Test(
        "a store failure is a refusal, never a 2xx (fail closed): verify, forward and an auth: required proxied route",
        arguments: SessionBackend.allCases
    )
    func storeFailure(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, gatehouse, _ in
            if sessions == .redis { #expect(await eventually { gatehouse.cache.isTrusted }) }
            let first = try #require(try await api.signup("closed@example.com", Self.password).sessionToken())
            // While the store works, the same requests are answered: the refusals below are the failure's.
            #expect(try await api.request(.get, "/auth/verify", cookie: first).status == 200)
            #expect(try await api.request(.get, "/app/page", cookie: first).status == 200)
            // A session only SQLite can answer for: not in Redis, never looked up (so in no
            // in-process cache). With Redis, a cached session is rightly answered without SQLite.
            let token = try #require(try await api.login("closed@example.com", Self.password).sessionToken())
            if sessions == .redis {
                #expect(try await gatehouse.cache.redis.send("DEL", sessionKey(token)) == .integer(1))
            }
            try gatehouse.database.pool.close()
            for path in ["/auth/verify", "/auth/forward"] {
                let response = try await api.request(.get, path, cookie: token)
                #expect(response.status == 401, "\(path)")
                #expect(response.headers[HTTPField.Name("X-User-Id")!] == nil, "\(path)")
            }
            let proxied = try await api.request(.get, "/app/page", cookie: token)
            #expect(proxied.status == 500)
            #expect(EchoedRequest(proxied) == nil)
        }
    }
}
