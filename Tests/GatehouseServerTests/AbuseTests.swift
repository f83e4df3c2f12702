import Foundation
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import HTTPTypes
import Testing

extension HTTPTarget {
    /// `POST /auth/login` as a client behind a trusted proxy at `address`.
    func login(_ email: String, _ password: String, from address: String) async throws -> HTTPResult {
        try await json(.post, "/auth/login", Self.credentials(email, password), headers: [.xForwardedFor: address])
    }
}

extension HTTPField.Name {
    static let retryAfterName = HTTPField.Name("Retry-After")!
}

/// Statuses counted: `[status: how many]`.
func tally(_ statuses: [Int]) -> [Int: Int] {
    statuses.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}

@Suite("Rate limits shared by every instance (SPEC §2.4, real Redis and processes)", .serialized)
struct SharedRateLimitTests {
    @Test("two instances on one Redis let through exactly the limit between them; with Redis killed each counts alone; Retry-After counts down")
    func sharedAndLocal() async throws {
        let instances = try await TwoInstances.start(environment: ["GATEHOUSE_ABUSE_LOGIN_PER_IP": "7/1m"], redisTimeout: "2s")
        defer { instances.terminate() }
        let (a, b) = (instances.a, instances.b)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for attempt in 0..<30 {
                group.addTask { try await (attempt % 2 == 0 ? a : b).login("nobody@example.com", "wrong password").status }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(tally(statuses) == [401: 7, 429: 23])
        let refused = try await b.login("nobody@example.com", "wrong password")
        #expect(refused.status == 429)
        #expect(refused.json["error"] as? String == "rate_limited")
        let first = try #require(refused.headers[.retryAfterName].flatMap { Int($0) })
        #expect((1...60).contains(first))
        try await Task.sleep(for: .milliseconds(2200))
        let later = try #require(try await a.login("nobody@example.com", "wrong password").headers[.retryAfterName].flatMap { Int($0) })
        #expect(later <= first - 2 && later >= 1, "Retry-After \(first), 2.2 s later \(later)")
        // The refusal is audited once for the window, not once per refused attempt.
        let audited = try await GatehouseStores.open(configurationOf(instances), redis: false).store.auditEvents(AuditQuery(limit: 1000))
        #expect(audited.filter { $0.kind == .rateLimited && $0.reason == "login_per_ip" }.count == 1)

        instances.redis.kill()
        #expect(try await eventually { try await a.get("/readyz").json["status"] as? String == "degraded" })
        #expect(try await eventually { try await b.get("/readyz").json["status"] as? String == "degraded" })
        for target in [a, b] {
            var alone: [Int] = []
            for _ in 0..<10 { alone.append(try await target.login("nobody@example.com", "wrong password").status) }
            #expect(tally(alone) == [401: 7, 429: 3])
        }
    }

    func configurationOf(_ instances: TwoInstances) throws -> GatehouseConfiguration {
        var configuration = GatehouseConfiguration()
        configuration.database.path = instances.directory.file("gatehouse.sqlite")
        return configuration
    }

    @Test("a lockout is lifted by `gatehouse user unlock`; until then the right password from elsewhere gets the wrong password's 401")
    func unlockCommand() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory)
        let gatehouse = try await GatehouseProcess(
            configPath: config, logPath: directory.file("serve.log"), environment: ["GATEHOUSE_ABUSE_LOCKOUT_MAX_FAILURES": "3"]
        )
        defer { gatehouse.terminate() }
        let api = SocketTarget(address: gatehouse.address)
        let password = "unlock me please"
        #expect(try await api.signup("locked@example.com", password).status == 201)
        for _ in 0..<3 { #expect(try await api.login("locked@example.com", "wrong password").status == 401) }
        let locked = try await api.login("locked@example.com", password)
        #expect(locked.status == 401)
        #expect(locked.json["error"] as? String == "invalid_credentials")
        let unlock = try await runGatehouse(["user", "unlock", "locked@example.com", "--config", config])
        #expect(unlock.status == 0)
        #expect(unlock.stdout.contains("unlocked locked@example.com"))
        #expect(try await api.login("locked@example.com", password).status == 200)
        let audit = try await runGatehouse(["audit", "--user", "locked@example.com", "--json", "--config", config]).stdout
        #expect(audit.contains("\"login_locked\""))
        #expect(audit.contains("\"login_unlocked\""))
    }
}

@Suite("Brute force against one account (SPEC §2.4)", .serialized)
struct BruteForceTests {
    static let email = "victim@example.com"
    static let password = "the rightful password"
    /// Where the rightful user logged in from before the attack.
    static let home = "198.51.100.7"

    /// A gateway behind a trusted proxy (loopback) with the default abuse limits, and the
    /// victim's account, logged in to once from ``home``.
    static func withVictim(_ configure: @escaping @Sendable (inout GatehouseConfiguration) -> Void = { _ in }, _ body: @escaping @Sendable (any HTTPTarget, TestGatehouse) async throws -> Void) async throws {
        try await TestGatehouse.run(.live, configure: {
            $0.abuse = AbuseConfiguration()
            $0.trustedProxies = [CIDR("127.0.0.1")!]
            configure(&$0)
        }) { api, gatehouse in
            #expect(try await api.json(.post, "/auth/signup", SocketTarget.credentials(email, password), headers: [.xForwardedFor: home]).status == 201)
            #expect(try await api.login(email, password, from: home).status == 200)
            try await body(api, gatehouse)
        }
    }

    /// How many Argon2 verifications the failed logins cost, and how many were refused
    /// without one (locked), from the audit log's reasons.
    static func verifications(_ gatehouse: TestGatehouse) async throws -> (verified: Int, locked: Int, locks: Int) {
        let events = try await gatehouse.store.auditEvents(AuditQuery(limit: 10_000))
        let failures = events.filter { $0.kind == .login && $0.outcome == .failure }
        return (failures.filter { $0.reason == "wrong_password" }.count, failures.filter { $0.reason == "locked" }.count, events.filter { $0.kind == .loginLocked }.count)
    }

    @Test("1,000 wrong passwords from one address: 10 are checked (login_per_account), the rest get 429; the user still gets in from home, not from a new address")
    func fromOneAddress() async throws {
        try await Self.withVictim { api, gatehouse in
            var statuses: [Int] = []
            for _ in 0..<1000 { statuses.append(try await api.login(Self.email, "guess", from: "203.0.113.9").status) }
            #expect(tally(statuses) == [401: 10, 429: 990])
            let counted = try await Self.verifications(gatehouse)
            #expect(counted.verified == 10)
            #expect(counted.locks == 1)
            #expect(try await api.login(Self.email, Self.password, from: Self.home).status == 200)
            #expect(try await api.login(Self.email, Self.password, from: "192.0.2.50").status == 429)
        }
    }

    @Test("1,000 wrong passwords from 1,000 addresses: the account's limit still holds them to 10 checks; the user still gets in from home")
    func fromManyAddresses() async throws {
        try await Self.withVictim { api, gatehouse in
            var statuses: [Int] = []
            for attempt in 0..<1000 { statuses.append(try await api.login(Self.email, "guess", from: "10.0.\(attempt / 250).\(attempt % 250 + 1)").status) }
            #expect(tally(statuses) == [401: 10, 429: 990])
            #expect(try await Self.verifications(gatehouse).verified == 10)
            #expect(try await api.login(Self.email, Self.password, from: Self.home).status == 200)
        }
    }

    @Test("the lockout alone (no rate limits): 10 failures lock, the next 990 get the same 401 without a hash; the right password passes from home only; an unlock lifts it")
    func lockout() async throws {
        try await Self.withVictim({ $0.abuse.loginPerIP = nil; $0.abuse.loginPerAccount = nil }) { api, gatehouse in
            var statuses: [Int] = []
            var bodies = Set<String>()
            for attempt in 0..<1000 {
                let response = try await api.login(Self.email, "guess", from: "10.1.\(attempt / 250).\(attempt % 250 + 1)")
                statuses.append(response.status)
                bodies.insert(response.body)
            }
            #expect(tally(statuses) == [401: 1000])
            #expect(bodies == [#"{"error":"invalid_credentials","message":"Invalid email or password."}"#])
            let counted = try await Self.verifications(gatehouse)
            #expect(counted.verified == 10)
            #expect(counted.locked == 990)
            #expect(counted.locks == 1)
            #expect(try await api.login(Self.email, Self.password, from: "192.0.2.50").status == 401)
            #expect(try await Self.verifications(gatehouse).locked == 991)
            #expect(try await api.login(Self.email, Self.password, from: Self.home).status == 200)
            // Unknown emails lock the same way: the lockout does not tell which emails have an account.
            for _ in 0..<10 { #expect(try await api.login("nobody@example.com", "guess", from: "192.0.2.60").status == 401) }
            #expect(try await Self.verifications(gatehouse).locks == 2)
            #expect(try await api.login("nobody@example.com", "guess", from: "192.0.2.60").status == 401)
            #expect(try await Self.verifications(gatehouse).locked == 992)
            #expect(try await gatehouse.store.unlockLogins(email: Self.email, client: .commandLine) == 1)
            #expect(try await api.login(Self.email, Self.password, from: "192.0.2.50").status == 200)
        }
    }
}

@Suite("Cross-site protection (SPEC §2.4)")
struct CrossSiteTests {
    static let password = "cross site password"

    @Test("cross-site POSTs to signup, login, logout and a protected route are refused with 403 csrf and change nothing; same-site, allowed and header-less ones pass")
    func refused() async throws {
        let upstream = try await ClosingUpstream.start()
        defer { upstream.stop() }
        try await TestGatehouse.run(.live, configure: {
            $0.upstreams = ["app": UpstreamTarget("http://127.0.0.1:\(upstream.port)")!]
            $0.routes = [
                RouteConfiguration(prefix: "/hooks/", upstream: "app", auth: .required, csrf: false),
                RouteConfiguration(prefix: "/", upstream: "app", auth: .required),
            ]
            $0.allowedOrigins = ["https://spa.example.net"]
        }) { api, gatehouse in
            let token = try #require(try await api.signup("csrf@example.com", Self.password).sessionToken())
            let credentials = SocketTarget.credentials("csrf@example.com", Self.password)
            let before = try await [gatehouse.count("users"), gatehouse.count("sessions")]
            let foreign: [[String: String]] = [["Origin": "https://evil.example"], ["Sec-Fetch-Site": "cross-site"], ["Origin": "null"]]
            for headers in foreign {
                var all = headers
                all["Host"] = "app.example.com"
                for (method, path, body, cookie) in [
                    (HTTPRequest.Method.post, "/auth/signup", SocketTarget.credentials("new@example.com", Self.password), nil),
                    (.post, "/auth/login", credentials, nil),
                    (.post, "/auth/logout", nil, token),
                    (.post, "/account/delete", "x=1", token),
                    (.delete, "/account", nil, token),
                ] as [(HTTPRequest.Method, String, String?, String?)] {
                    var fields = all
                    if body != nil { fields["Content-Type"] = path.hasPrefix("/auth/") ? "application/json" : "application/x-www-form-urlencoded" }
                    let response = try await api.request(method, path, cookie: cookie, headers: fields, body: body)
                    #expect(response.status == 403, "\(method) \(path) \(headers)")
                    #expect(response.json["error"] as? String == "csrf")
                    #expect(response.setCookies.isEmpty)
                }
            }
            #expect(try await [gatehouse.count("users"), gatehouse.count("sessions")] == before)
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
            #expect(upstream.connections.withLockedValue { $0 } == 0)
            let audited = try await gatehouse.store.auditEvents(AuditQuery(limit: 1000)).filter { $0.kind == .crossSiteRefused }
            #expect(audited.count == 9)

            // The same requests from the site itself, from an allowed origin, or without either header pass.
            let own = try await api.request(.post, "/auth/login", headers: ["Host": "app.example.com", "Origin": "https://app.example.com", "Content-Type": "application/json"], body: credentials)
            #expect(own.status == 200)
            let allowed = try await api.request(.post, "/auth/login", headers: ["Origin": "https://spa.example.net", "Content-Type": "application/json"], body: credentials)
            #expect(allowed.status == 200)
            let hook = try await api.request(.post, "/hooks/x", cookie: token, headers: ["Origin": "https://evil.example", "Content-Type": "text/plain"], body: "x")
            #expect(hook.status == 200)
            #expect(upstream.connections.withLockedValue { $0 } == 1)
            #expect(try await api.logout(cookie: token).status == 200)
        }
    }
}

@Suite("Security headers (SPEC §2.4)")
struct SecurityHeaderTests {
    @Test("every answer Gatehouse writes itself for a browser is no-store, nosniff, no-referrer, unframeable and loads nothing; an upstream's answer is the upstream's")
    func headers() async throws {
        try await TestGatehouse.withUpstream(sessions: .redis) { api, _, _ in
            let token = try #require(try await api.signup("headers@example.com", "headers password").sessionToken())
            for (path, cookie) in [("/auth/me", nil), ("/auth/me", token), ("/auth/verify", nil), ("/app/x", nil), ("/healthz", nil), ("/nope/%00", nil)] as [(String, String?)] {
                let response = try await api.get(path, cookie: cookie)
                for field in SecurityHeaders.fields {
                    #expect(response.headers[field.name] == field.value, "\(path) \(response.status) \(field.name)")
                }
            }
            // The verify 200 is read by the front proxy only (nginx never passes it on): its
            // identity headers, not a browser's.
            let verified = try await api.get("/auth/verify", cookie: token)
            #expect(verified.status == 200)
            #expect(verified.headers[.cacheControl] == "no-store")
            let proxied = try await api.get("/public/x")
            #expect(proxied.status == 200)
            #expect(proxied.headers[.xFrameOptions] == nil)
            #expect(proxied.headers[.contentSecurityPolicy] == nil)
        }
    }
}
