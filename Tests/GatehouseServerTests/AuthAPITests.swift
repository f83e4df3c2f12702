import Foundation
import GRDB
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import HTTPTypes
import Testing

@Suite("Auth API (SPEC §2.1)")
struct AuthAPITests {
    static let password = "correct horse battery staple"

    @Test("signup answers 201 with the user and a session cookie", arguments: Transport.allCases)
    func signup(transport: Transport) async throws {
        try await TestGatehouse.run(transport, configure: { $0.cookie.secure = true }) { api, gatehouse in
            let response = try await api.signup("  Alice@Example.COM ", Self.password)
            #expect(response.status == 201)
            let json = response.json
            #expect(json["email"] as? String == "alice@example.com")
            #expect((json["id"] as? String).flatMap(UUID.init(uuidString:)) != nil)
            #expect(json["email_verified"] as? Bool == false)
            #expect(json["mfa_enabled"] as? Bool == false)
            #expect((json["created_at"] as? String)?.hasSuffix("Z") == true)
            #expect(Set(json.keys) == ["id", "email", "created_at", "email_verified", "mfa_enabled"])
            let cookie = try #require(response.setCookies.first)
            let token = try #require(response.sessionToken(name: "__Host-gatehouse_session"))
            #expect(token.count == 43)
            // Secure, host-only, Path=/: the cookie is named with the __Host- prefix, so no
            // sibling subdomain and no plain-HTTP page can plant one (cookie tossing).
            #expect(cookie == "__Host-gatehouse_session=\(token); Max-Age=86400; Path=/; HttpOnly; SameSite=Lax; Secure")
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            // Only the prefixed name counts: a cookie called gatehouse_session is someone else's.
            #expect(try await api.get("/auth/me", cookie: token).status == 401)
            let me = try await api.send(.get, "/auth/me", headers: [.cookie: "__Host-gatehouse_session=\(token)"], body: nil)
            #expect(me.status == 200)
            #expect(me.body == response.body)
            #expect(try await gatehouse.counts() == [1, 1, 1])
        }
    }

    @Test("login answers 200 with a new session id every time", arguments: Transport.allCases)
    func login(transport: Transport) async throws {
        try await TestGatehouse.run(transport) { api, gatehouse in
            let signup = try await api.signup("bob@example.com", Self.password)
            let first = try #require(signup.sessionToken())
            let login = try await api.login("BOB@example.com", Self.password)
            #expect(login.status == 200)
            #expect(login.json["email"] as? String == "bob@example.com")
            let second = try #require(login.sessionToken())
            #expect(second != first)
            // Both are live: logging in elsewhere does not end other sessions.
            #expect(try await api.get("/auth/me", cookie: first).status == 200)
            #expect(try await api.get("/auth/me", cookie: second).status == 200)
            #expect(try await gatehouse.count("sessions") == 2)
        }
    }

    @Test("login with a session cookie replaces that session (no fixation)")
    func noFixation() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let old = try #require(try await api.signup("c@example.com", Self.password).sessionToken())
            let login = try await api.login("c@example.com", Self.password, cookie: old)
            let new = try #require(login.sessionToken())
            #expect(new != old)
            #expect(try await api.get("/auth/me", cookie: old).status == 401)
            #expect(try await api.get("/auth/me", cookie: new).status == 200)
            #expect(try await gatehouse.count("sessions") == 1)
        }
    }

    @Test("login revokes every session cookie the client came with, not just the first")
    func noFixationWithSeveralCookies() async throws {
        try await TestGatehouse.run { api, _ in
            let planted = try #require(try await api.signup("planter@example.com", Self.password).sessionToken())
            let own = try #require(try await api.signup("victim@example.com", Self.password).sessionToken())
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[.cookie] = "gatehouse_session=\(own); gatehouse_session=\(planted)"
            let login = try await api.send(.post, "/auth/login", headers: headers, body: type(of: api).credentials("victim@example.com", Self.password))
            #expect(login.status == 200)
            #expect(try await api.get("/auth/me", cookie: planted).status == 401)
            #expect(try await api.get("/auth/me", cookie: own).status == 401)
            #expect(try await api.get("/auth/me", cookie: try #require(login.sessionToken())).status == 200)
        }
    }

    @Test("wrong password and unknown email get the same 401 body, no cookie, and an audit event")
    func invalidCredentials() async throws {
        try await TestGatehouse.run { api, gatehouse in
            _ = try await api.signup("d@example.com", Self.password)
            let wrong = try await api.login("d@example.com", "not the password")
            let unknown = try await api.login("nobody@example.com", Self.password)
            let invalid = try await api.login("not-an-email", Self.password)
            for response in [wrong, unknown, invalid] {
                #expect(response.status == 401)
                #expect(response.body == #"{"error":"invalid_credentials","message":"Invalid email or password."}"#)
                #expect(response.setCookies.isEmpty)
            }
            let reasons = try await gatehouse.store.auditEvents(AuditQuery()).filter { $0.kind == .login }.map { $0.reason ?? "" }
            #expect(reasons == ["invalid_email", "unknown_email", "wrong_password"])
            #expect(try await gatehouse.count("sessions") == 1)
        }
    }

    @Test("a failed login keeps what the email field held only when it is an address: a password typed there is never stored")
    func auditedEmailIsAnAddress() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let typed = ["Hunter2 typed in the wrong field", "  hunter2@  ", "hunter2"]
            for text in typed {
                #expect(try await api.login(text, Self.password).status == 401)
            }
            #expect(try await api.login(" Someone@Example.com ", Self.password).status == 401)
            // The failures are all recorded; only the address is kept, normalised.
            let rows = try await gatehouse.database.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT email, reason FROM audit_events WHERE event = 'login' ORDER BY id").map { row in
                    [row["email"] as String?, row["reason"] as String?]
                }
            }
            #expect(rows == [[nil, "invalid_email"], [nil, "invalid_email"], [nil, "invalid_email"], ["someone@example.com", "unknown_email"]])
            // Not in any column of any audit row, nor anywhere in the database file or its WAL.
            let everything = try await gatehouse.database.pool.read { db in
                try String.fetchAll(db, sql: "SELECT coalesce(email, '') || coalesce(reason, '') || coalesce(user_id, '') || ip || user_agent FROM audit_events")
            }
            #expect(!everything.contains { $0.lowercased().contains("hunter2") })
            for suffix in ["", "-wal"] {
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: gatehouse.database.path + suffix))) ?? Data()
                #expect(bytes.range(of: Data("unter2".utf8)) == nil, "gatehouse.sqlite\(suffix)")
            }
        }
    }

    @Test("logout revokes the session server-side, clears the cookie, and is idempotent", arguments: Transport.allCases)
    func logout(transport: Transport) async throws {
        try await TestGatehouse.run(transport) { api, gatehouse in
            let token = try #require(try await api.signup("e@example.com", Self.password).sessionToken())
            let logout = try await api.logout(cookie: token)
            #expect(logout.status == 200)
            #expect(logout.body == #"{"message":"Logged out."}"#)
            #expect(logout.setCookies == ["gatehouse_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"])
            // The browser may keep sending the old value: the server no longer accepts it.
            #expect(try await api.get("/auth/me", cookie: token).status == 401)
            #expect(try await gatehouse.count("sessions") == 0)
            #expect(try await api.logout(cookie: token).status == 200)
            #expect(try await api.logout(cookie: nil).status == 200)
            #expect(try await api.logout(cookie: "garbage").status == 200)
            let kinds = try await gatehouse.store.auditEvents(AuditQuery()).map(\.kind)
            #expect(kinds == [.logout, .signup])
        }
    }

    @Test("me without a session, or with a garbage, expired or revoked cookie, is 401")
    func meRejections() async throws {
        try await TestGatehouse.run(configure: { $0.session.lifetime = .seconds(1) }) { api, gatehouse in
            let anonymous = try await api.get("/auth/me")
            #expect(anonymous.status == 401)
            #expect(anonymous.body == #"{"error":"unauthenticated","message":"Not logged in."}"#)
            #expect(anonymous.setCookies.isEmpty)

            for garbage in ["", "x", String(repeating: "A", count: 44), "%00%00", String(repeating: "€", count: 43)] {
                let response = try await api.get("/auth/me", cookie: garbage)
                #expect(response.status == 401)
                #expect(response.setCookies.first?.contains("Max-Age=0") == true)
            }

            let expiring = try #require(try await api.signup("f@example.com", Self.password).sessionToken())
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await api.get("/auth/me", cookie: expiring).status == 401)

            let revoked = try #require(try await api.login("f@example.com", Self.password).sessionToken())
            let user = try #require(try await gatehouse.store.user(email: "f@example.com"))
            _ = try await gatehouse.store.revokeSessions(.user(id: user.id), reason: "admin", client: .commandLine)
            #expect(try await api.get("/auth/me", cookie: revoked).status == 401)
        }
    }

    @Test("a disabled user cannot log in and their sessions stop validating at once")
    func disabledUser() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let token = try #require(try await api.signup("g@example.com", Self.password).sessionToken())
            #expect(try await gatehouse.store.setDisabled(email: "g@example.com", disabled: true, client: .commandLine))
            #expect(try await api.get("/auth/me", cookie: token).status == 401)
            let login = try await api.login("g@example.com", Self.password)
            #expect(login.status == 401)
            #expect(login.json["error"] as? String == "invalid_credentials")
            #expect(try await gatehouse.store.auditEvents(AuditQuery()).first?.reason == "user_disabled")
            #expect(try await gatehouse.store.setDisabled(email: "g@example.com", disabled: false, client: .commandLine))
            #expect(try await api.login("g@example.com", Self.password).status == 200)
        }
    }

    @Test("HTML form (urlencoded) bodies work for signup, login and logout, with the pages' CSRF token")
    func forms() async throws {
        try await TestGatehouse.run(.live) { api, _ in
            let form = try await PageForm.open(api)
            let signup = try await form.post(api, "/auth/signup", [("email", "h@example.com"), ("password", "correct horse battery")])
            #expect(signup.status == 303)
            let login = try await form.post(api, "/auth/login", [("email", "H@EXAMPLE.com"), ("password", "correct horse battery")])
            #expect(login.status == 303)
            let session = try #require(login.sessionToken())
            #expect(try await api.get("/auth/me", cookie: session).status == 200)
            #expect(try await form.post(api, "/auth/logout", [], session: session).status == 303)
            #expect(try await api.get("/auth/me", cookie: session).status == 401)
        }
    }

    @Test("unicode passwords: any characters, counted as code points, NFKC-normalised")
    func unicodePasswords() async throws {
        try await TestGatehouse.run { api, _ in
            let composed = "p\u{E4}ssw\u{F6}rd 🔐 密码"
            let decomposed = "pa\u{308}sswo\u{308}rd 🔐 密码"
            let controls = "\u{0}\u{1}\u{7f}\"\\'; DROP TABLE users;--"
            let statuses = [
                try await api.signup("i@example.com", composed).status,
                try await api.login("i@example.com", decomposed).status,
                try await api.login("i@example.com", "passwords 🔐 密码").status,
                try await api.signup("j@example.com", String(repeating: "🔐", count: 8)).status,
                try await api.signup("k@example.com", String(repeating: "🔐", count: 7)).status,
                try await api.signup("l@example.com", controls).status,
                try await api.login("l@example.com", controls).status,
            ]
            #expect(statuses == [201, 200, 401, 201, 422, 201, 200])
        }
    }

    @Test("a common leaked password, the email or its local part is refused with 422 and audited, in any case; the bundled list has 100,000 entries")
    func passwordPolicy() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let common = "common"
            for (email, password, message) in [
                ("p1@example.com", "password123", common), ("p2@example.com", "PassWord123", common), ("p3@example.com", "iloveyou1", common),
                ("p4@example.com", "p4@example.com", "email"), ("jonathan.smith@example.com", "Jonathan.Smith", "email"),
            ] {
                let response = try await api.signup(email, password)
                #expect(response.status == 422, "\(password)")
                #expect(response.json["error"] as? String == "validation_error")
                #expect((response.json["fields"] as? [String: String])?["password"]?.contains(message) == true, "\(password)")
            }
            #expect(try await gatehouse.count("users") == 0)
            let refusals = try await gatehouse.store.auditEvents(AuditQuery()).filter { $0.kind == .signup && $0.outcome == .failure }
            #expect(refusals.compactMap(\.reason).sorted() == ["common_password", "common_password", "common_password", "contains_email", "contains_email"])
            // A passphrase of common words is fine: no composition rules (NIST SP 800-63B).
            #expect(try await api.signup("p5@example.com", "correct horse battery staple").status == 201)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let bundled = try String(contentsOf: root.appendingPathComponent("Sources/GatehouseCore/Resources/common-passwords.txt"), encoding: .utf8)
        #expect(Set(bundled.split(separator: "\n")).count == 100_000)
        // What is kept: the entries a password could be (8–128 characters), folded.
        #expect(CommonPasswords.shared.count > 30_000)
        #expect(CommonPasswords.shared.contains("password123"))
    }

    @Test("passwords of 8 and 128 characters are accepted, 7 and 129 refused with 422")
    func passwordBounds() async throws {
        try await TestGatehouse.run { api, gatehouse in
            #expect(try await api.signup("m8@example.com", "kq7#vZp2").status == 201)
            #expect(try await api.signup("m128@example.com", String(repeating: "a", count: 128)).status == 201)
            for length in [0, 7, 129, 1000] {
                let response = try await api.signup("m\(length)@example.com", String(repeating: "a", count: length))
                #expect(response.status == 422)
                #expect((response.json["fields"] as? [String: String])?["password"] == "Password must be between 8 and 128 characters.")
            }
            #expect(try await gatehouse.count("users") == 2)
            #expect(try await api.login("m128@example.com", String(repeating: "a", count: 128)).status == 200)
            #expect(try await api.login("m128@example.com", String(repeating: "a", count: 129)).status == 401)
        }
    }

    @Test("the password length is that of its NFKC form, the form hashed: ligatures count as their letters, combining marks with theirs")
    func passwordLengthAfterNormalisation() async throws {
        try await TestGatehouse.run { api, gatehouse in
            // "ﬃ" is one code point and three after NFKC ("ffi"); "e" + U+0301 two, and one ("é").
            let ligatures = String(repeating: "\u{FB03}", count: 3)
            let combining = String(repeating: "e\u{301}", count: 5)
            let longLigatures = String(repeating: "\u{FB03}", count: 43)
            #expect(ligatures.unicodeScalars.count == 3 && combining.unicodeScalars.count == 10 && longLigatures.unicodeScalars.count == 43)
            #expect(try await api.signup("ligatures@example.com", ligatures).status == 201)
            for (email, password) in [("combining@example.com", combining), ("long@example.com", longLigatures)] {
                let response = try await api.signup(email, password)
                #expect(response.status == 422, "\(email)")
                #expect((response.json["fields"] as? [String: String])?["password"] == "Password must be between 8 and 128 characters.")
            }
            #expect(try await gatehouse.count("users") == 1)
            // The hash is of the normalised form: either spelling logs in.
            #expect(try await api.login("ligatures@example.com", "ffiffiffi").status == 200)
            #expect(try await api.login("ligatures@example.com", ligatures).status == 200)
        }
    }

    @Test("signup with a taken email is 409 and changes nothing")
    func duplicateSignup() async throws {
        try await TestGatehouse.run { api, gatehouse in
            _ = try await api.signup("n@example.com", Self.password)
            let before = try await gatehouse.counts()
            let again = try await api.signup("N@Example.com", "another password")
            #expect(again.status == 409)
            #expect(again.body == #"{"error":"email_taken","message":"An account with this email already exists."}"#)
            #expect(again.setCookies.isEmpty)
            #expect(try await gatehouse.counts() == before)
            #expect(try await api.login("n@example.com", Self.password).status == 200)
        }
    }

    @Test("the same signup racing itself gives exactly one 201")
    func signupRace() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<12 {
                    group.addTask { try await api.signup("race@example.com", "password number \(index)").status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 201 }.count == 1)
            #expect(statuses.filter { $0 == 409 }.count == 11)
            #expect(try await gatehouse.count("users") == 1)
            #expect(try await gatehouse.count("sessions") == 1)
        }
    }

    @Test("a hash made with older Argon2 parameters is upgraded at the next login")
    func hashUpgrade() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let old = try Argon2Hasher(parameters: Argon2Parameters(memoryKiB: 2048, iterations: 1, parallelism: 1), workers: 1)
            let oldHash = try await old.hash(Self.password)
            try await old.shutdown()
            _ = try await gatehouse.store.createUser(email: "o@example.com", passwordHash: oldHash, session: nil, client: .commandLine)
            #expect(try await api.login("o@example.com", Self.password).status == 200)
            let stored = try #require(try await gatehouse.store.loginCandidate(email: "o@example.com")?.passwordHash)
            #expect(stored.hasPrefix("$argon2id$v=19$m=1024,t=1,p=1$"))
            #expect(try await api.login("o@example.com", Self.password).status == 200)
        }
    }

    @Test("an unknown email is verified against a dummy hash with the parameters most stored hashes have")
    func dummyHashFollowsStoredHashes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("gatehouse.sqlite")
        // Three accounts created before `password.argon2` became the suite's cheap parameters.
        let older = Argon2Parameters(memoryKiB: 2048, iterations: 1, parallelism: 1)
        let old = try Argon2Hasher(parameters: older, workers: 1)
        let stores = try GatehouseStores.open(TestGatehouse.configuration(in: directory) { _ in }, redis: false)
        for index in 0..<3 {
            _ = try await stores.store.createUser(email: "old\(index)@example.com", passwordHash: try await old.hash(Self.password), session: nil, client: .commandLine)
        }
        try await old.shutdown()
        try await TestGatehouse.run(configure: { $0.database.path = path }) { api, gatehouse in
            let hasher = gatehouse.dependencies.hasher
            #expect(hasher.parameters != older)
            // From the first request on, an unknown email costs what an account with the older hash costs.
            #expect(Argon2Hasher.parameters(of: hasher.dummyHash) == older)
            let unknown = try await api.login("nobody@example.com", Self.password)
            #expect(unknown.status == 401)
            // Once most hashes have the configured parameters, the next refresh follows them.
            for index in 0..<4 {
                let signup = try await api.signup("new\(index)@example.com", Self.password)
                #expect(signup.status == 201)
            }
            #expect(Argon2Hasher.parameters(of: hasher.dummyHash) == older)
            await DummyHashService(store: gatehouse.store, hasher: hasher, logger: gatehouse.logs.logger()).refresh()
            #expect(Argon2Hasher.parameters(of: hasher.dummyHash) == hasher.parameters)
        }
    }

    @Test("every auth event is in the audit log with time, user, email, IP, user agent and outcome")
    func auditTrail() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            var headers = HTTPFields()
            headers[.userAgent] = "AuditTest/1.0"
            headers[.contentType] = "application/json"
            // Stored times are whole milliseconds: bracket them at that precision.
            let before = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
            let signup = try await api.send(.post, "/auth/signup", headers: headers, body: type(of: api).credentials("p@example.com", Self.password))
            _ = try await api.send(.post, "/auth/login", headers: headers, body: type(of: api).credentials("p@example.com", "wrong password"))
            var logoutHeaders = headers
            logoutHeaders[.cookie] = "gatehouse_session=\(try #require(signup.sessionToken()))"
            _ = try await api.send(.post, "/auth/logout", headers: logoutHeaders, body: nil)
            let after = Date()
            let events = try await gatehouse.store.auditEvents(AuditQuery(email: "p@example.com"))
            #expect(events.map(\.kind) == [.logout, .login, .signup])
            #expect(events.map(\.outcome) == [.success, .failure, .success])
            let userId = try #require(signup.json["id"] as? String)
            for event in events {
                #expect(event.userId == userId)
                #expect(event.ip == "127.0.0.1")
                #expect(event.userAgent == "AuditTest/1.0")
                #expect(event.at >= before && event.at <= after, "\(event.at) not in \(before)...\(after)")
            }
        }
    }
}
