import Foundation
import GatehouseCore
import GatehouseServer
import GatehouseStore
import GatehouseTestSupport
import HTTPTypes
import Testing

/// A JSON object of string members.
func jsonBody(_ members: KeyValuePairs<String, String>) -> String {
    var object = JSONText()
    for (key, value) in members { object.add(key, value) }
    return object.string
}

extension TestGatehouse {
    /// Where the `file` mailer of ``mailing(_:)`` writes.
    var mailDirectory: String { (dependencies.configuration.mail.fileDir as NSString).standardizingPath }

    /// The configuration change that turns on the `file` mailer beside the database.
    static func mailing(_ configuration: inout GatehouseConfiguration) {
        configuration.publicURL = "https://auth.example.com"
        configuration.mail.mailer = .file
        configuration.mail.fileDir = (configuration.database.path as NSString).deletingLastPathComponent + "/mail"
    }

    /// Waits for the `count`-th mail and returns every mail so far.
    func mails(atLeast count: Int) async throws -> [String] {
        _ = await eventually { mailFiles(in: mailDirectory).count >= count }
        let mails = mailFiles(in: mailDirectory)
        try #require(mails.count >= count, "expected \(count) mails, found \(mails.count)")
        return mails
    }
}

@Suite("Sessions you can see and end (SPEC §2.4)")
struct SessionListTests {
    static let password = AuthAPITests.password

    @Test("GET /auth/sessions lists the caller's sessions only, marks the current one, and shows no token")
    func list() async throws {
        try await TestGatehouse.run { api, _ in
            let first = try #require(try await api.signup("alice@example.com", Self.password).sessionToken())
            let second = try #require(try await api.login("alice@example.com", Self.password).sessionToken())
            _ = try await api.signup("bob@example.com", Self.password)
            let response = try await api.get("/auth/sessions", cookie: second)
            #expect(response.status == 200)
            let sessions = try #require(response.json["sessions"] as? [[String: Any]])
            #expect(sessions.count == 2)
            #expect(sessions.map { $0["current"] as? Bool } == [true, false])
            #expect(Set(sessions[0].keys) == ["id", "created_at", "last_seen_at", "ip", "user_agent", "current"])
            #expect(!response.body.contains(first) && !response.body.contains(second))
            // The id is useless as a cookie.
            let id = try #require(sessions[1]["id"] as? String)
            #expect(try await api.get("/auth/me", cookie: id).status == 401)
            #expect(try await api.get("/auth/sessions").status == 401)
        }
    }

    @Test("DELETE /auth/sessions/{id} ends one of the caller's sessions; another user's id is a 404 and ends nothing", arguments: Transport.allCases)
    func deleteOne(transport: Transport) async throws {
        try await TestGatehouse.run(transport) { api, gatehouse in
            let phone = try #require(try await api.signup("alice@example.com", Self.password).sessionToken())
            let laptop = try #require(try await api.login("alice@example.com", Self.password).sessionToken())
            let bob = try #require(try await api.signup("bob@example.com", Self.password).sessionToken())
            let bobSessions = try #require(try await api.get("/auth/sessions", cookie: bob).json["sessions"] as? [[String: Any]])
            let bobId = try #require(bobSessions.first?["id"] as? String)
            #expect(try await api.json(.delete, "/auth/sessions/\(bobId)", "{}", cookie: laptop).status == 404)
            #expect(try await api.get("/auth/me", cookie: bob).status == 200)
            #expect(try await api.json(.delete, "/auth/sessions/no-such-id", "{}", cookie: laptop).status == 404)

            let mine = try #require(try await api.get("/auth/sessions", cookie: laptop).json["sessions"] as? [[String: Any]])
            let phoneId = try #require(mine.first { $0["current"] as? Bool == false }?["id"] as? String)
            let deleted = try await api.json(.delete, "/auth/sessions/\(phoneId)", "{}", cookie: laptop)
            #expect(deleted.status == 204)
            #expect(deleted.setCookies.isEmpty)
            #expect(try await api.get("/auth/me", cookie: phone).status == 401)
            #expect(try await api.get("/auth/me", cookie: laptop).status == 200)
            let audited = try await gatehouse.store.auditEvents(AuditQuery(email: "alice@example.com"))
            #expect(audited.contains { $0.kind == .sessionRevoked && $0.reason == "user_revoked" })
        }
    }

    @Test("POST /auth/logout-all revokes every session of the user, this one too, and clears the cookie")
    func logoutAll() async throws {
        try await TestGatehouse.run(.live) { api, _ in
            let sessions = [
                try #require(try await api.signup("alice@example.com", Self.password).sessionToken()),
                try #require(try await api.login("alice@example.com", Self.password).sessionToken()),
                try #require(try await api.login("alice@example.com", Self.password).sessionToken()),
            ]
            let bob = try #require(try await api.signup("bob@example.com", Self.password).sessionToken())
            let response = try await api.json(.post, "/auth/logout-all", "{}", cookie: sessions[1])
            #expect(response.status == 200)
            #expect(response.setCookies.first?.contains("Max-Age=0") == true)
            for session in sessions { #expect(try await api.get("/auth/me", cookie: session).status == 401) }
            #expect(try await api.get("/auth/me", cookie: bob).status == 200)
        }
    }
}

@Suite("Password change and reset (SPEC §2.4)")
struct PasswordLifecycleTests {
    static let password = AuthAPITests.password
    static let newPassword = "a much longer new passphrase"

    @Test("a password change checks the current password, rotates this session and revokes every other one", arguments: Transport.allCases)
    func change(transport: Transport) async throws {
        try await TestGatehouse.run(transport) { api, gatehouse in
            let current = try #require(try await api.signup("alice@example.com", Self.password).sessionToken())
            let other = try #require(try await api.login("alice@example.com", Self.password).sessionToken())
            let wrong = try await api.json(.post, "/auth/password", jsonBody(["current_password": "not the password", "new_password": Self.newPassword]), cookie: current)
            #expect(wrong.status == 403)
            #expect(wrong.json["error"] as? String == "invalid_credentials")
            #expect(try await api.get("/auth/me", cookie: other).status == 200)
            let weak = try await api.json(.post, "/auth/password", jsonBody(["current_password": Self.password, "new_password": "password"]), cookie: current)
            #expect(weak.status == 422)
            #expect((weak.json["fields"] as? [String: String])?["new_password"] != nil)

            let changed = try await api.json(.post, "/auth/password", jsonBody(["current_password": Self.password, "new_password": Self.newPassword]), cookie: current)
            #expect(changed.status == 200)
            let rotated = try #require(changed.sessionToken())
            #expect(rotated != current)
            #expect(try await api.get("/auth/me", cookie: rotated).status == 200)
            #expect(try await api.get("/auth/me", cookie: current).status == 401)
            #expect(try await api.get("/auth/me", cookie: other).status == 401)
            #expect(try await api.login("alice@example.com", Self.password).status == 401)
            #expect(try await api.login("alice@example.com", Self.newPassword).status == 200)
            #expect(try await api.json(.post, "/auth/password", "{}").status == 401)
            let events = try await gatehouse.store.auditEvents(AuditQuery(email: "alice@example.com")).map(\.kind)
            #expect(events.contains(.passwordChanged))
        }
    }

    @Test("forgot-password mails a single-use link that sets the password and revokes every session")
    func reset() async throws {
        try await TestGatehouse.run(.live, configure: TestGatehouse.mailing) { api, gatehouse in
            let session = try #require(try await api.signup("alice@example.com", Self.password).sessionToken())
            let forgot = try await api.json(.post, "/auth/password/forgot", jsonBody(["email": "ALICE@example.com"]))
            #expect(forgot.status == 202)
            let mails = try await gatehouse.mails(atLeast: 2)
            let resetMail = try #require(mails.first { $0.contains("Subject: Reset your password") })
            #expect(resetMail.contains("To: alice@example.com"))
            let token = try #require(mailedToken(resetMail, path: "https://auth.example.com/auth/password/reset"))
            // The mail carries the token; the store only its hash (I1), and no log line either.
            #expect(try await gatehouse.count("account_tokens") == 2)
            #expect(!gatehouse.logs.text.contains(token))

            // A refused password leaves the link usable.
            let weak = try await api.json(.post, "/auth/password/reset", jsonBody(["token": token, "new_password": "short"]))
            #expect(weak.status == 422)
            let reset = try await api.json(.post, "/auth/password/reset", jsonBody(["token": token, "new_password": Self.newPassword]))
            #expect(reset.status == 200)
            #expect(try await api.get("/auth/me", cookie: session).status == 401)
            #expect(try await api.login("alice@example.com", Self.newPassword).status == 200)
            // The link proves the mailbox: the email is verified too.
            #expect(try await api.login("alice@example.com", Self.newPassword).json["email_verified"] as? Bool == true)
            let again = try await api.json(.post, "/auth/password/reset", jsonBody(["token": token, "new_password": "yet another passphrase"]))
            #expect(again.status == 400)
            #expect(again.json["error"] as? String == "invalid_token")
            #expect(try await api.json(.post, "/auth/password/reset", jsonBody(["token": "garbage", "new_password": Self.newPassword])).status == 400)
        }
    }

    @Test("a reset link is void after any password change, and a verification token is not a reset token")
    func voidAfterChange() async throws {
        try await TestGatehouse.run(.live, configure: TestGatehouse.mailing) { api, gatehouse in
            let session = try #require(try await api.signup("alice@example.com", Self.password).sessionToken())
            let verification = try #require(mailedToken(try await gatehouse.mails(atLeast: 1)[0], path: "/auth/email/verify"))
            #expect(try await api.json(.post, "/auth/password/reset", jsonBody(["token": verification, "new_password": Self.newPassword])).status == 400)
            _ = try await api.json(.post, "/auth/password/forgot", jsonBody(["email": "alice@example.com"]))
            let reset = try #require(mailedToken(try await gatehouse.mails(atLeast: 2)[1], path: "/auth/password/reset"))
            let changed = try await api.json(.post, "/auth/password", jsonBody(["current_password": Self.password, "new_password": Self.newPassword]), cookie: session)
            #expect(changed.status == 200)
            #expect(try await api.json(.post, "/auth/password/reset", jsonBody(["token": reset, "new_password": "yet another passphrase"])).status == 400)
            #expect(try await api.login("alice@example.com", Self.newPassword).status == 200)
        }
    }

    @Test("forgot-password answers an unknown email exactly as a known one, and mails nothing")
    func unknownEmail() async throws {
        try await TestGatehouse.run(.live, configure: TestGatehouse.mailing) { api, gatehouse in
            _ = try await api.signup("alice@example.com", Self.password)
            _ = try await gatehouse.mails(atLeast: 1)
            let known = try await api.json(.post, "/auth/password/forgot", jsonBody(["email": "alice@example.com"]))
            let unknown = try await api.json(.post, "/auth/password/forgot", jsonBody(["email": "nobody@example.com"]))
            #expect(known.status == 202 && unknown.status == 202)
            #expect(known.body == unknown.body)
            var knownHeaders = known.headers
            var unknownHeaders = unknown.headers
            for name in [HTTPField.Name.xRequestId, .date] {
                knownHeaders[name] = nil
                unknownHeaders[name] = nil
            }
            #expect(knownHeaders == unknownHeaders)
            _ = try await gatehouse.mails(atLeast: 2)
            #expect(await eventually {
                (try? await gatehouse.store.auditEvents(AuditQuery(email: "nobody@example.com")).first?.reason) == "unknown_email"
            })
            #expect(mailFiles(in: gatehouse.mailDirectory).filter { $0.contains("nobody@example.com") }.isEmpty)
            #expect(try await api.json(.post, "/auth/password/forgot", jsonBody(["email": "not an email"])).status == 422)
        }
    }
}

@Suite("Email verification (SPEC §2.4)")
struct EmailVerificationTests {
    static let password = AuthAPITests.password

    @Test("signup mails a verification link; require_verified_email refuses the user until it is followed")
    func verify() async throws {
        try await TestGatehouse.run(.live, configure: {
            TestGatehouse.mailing(&$0)
            $0.requireVerifiedEmail = true
        }) { api, gatehouse in
            let signup = try await api.signup("alice@example.com", Self.password)
            let session = try #require(signup.sessionToken())
            #expect(signup.json["email_verified"] as? Bool == false)
            #expect(try await api.get("/auth/verify", cookie: session).status == 401)
            let forward = try await api.get("/auth/forward", cookie: session)
            #expect(forward.status == 403)
            #expect(forward.json["error"] as? String == "email_not_verified")
            #expect(try await api.get("/auth/me", cookie: session).status == 200)

            let mail = try await gatehouse.mails(atLeast: 1)[0]
            #expect(mail.contains("Subject: Confirm your email address"))
            #expect(mail.contains("Content-Type: text/html"))
            let token = try #require(mailedToken(mail, path: "https://auth.example.com/auth/email/verify"))
            let verified = try await api.json(.post, "/auth/email/verify", jsonBody(["token": token]))
            #expect(verified.status == 200)
            #expect(verified.json["email_verified"] as? Bool == true)
            #expect(try await api.get("/auth/verify", cookie: session).status == 200)
            #expect(try await api.get("/auth/me", cookie: session).json["email_verified"] as? Bool == true)
            #expect(try await api.json(.post, "/auth/email/verify", jsonBody(["token": token])).status == 400)
            let resend = try await api.json(.post, "/auth/email/resend", "{}", cookie: session)
            #expect(resend.status == 200)
        }
    }

    @Test("resend mails a new link to an unverified user and needs a session")
    func resend() async throws {
        try await TestGatehouse.run(.live, configure: TestGatehouse.mailing) { api, gatehouse in
            let session = try #require(try await api.signup("alice@example.com", Self.password).sessionToken())
            #expect(try await api.json(.post, "/auth/email/resend", "{}").status == 401)
            #expect(try await api.json(.post, "/auth/email/resend", "{}", cookie: session).status == 202)
            let mails = try await gatehouse.mails(atLeast: 2)
            let tokens = mails.compactMap { mailedToken($0, path: "/auth/email/verify") }
            #expect(Set(tokens).count == 2)
            #expect(try await api.json(.post, "/auth/email/verify", jsonBody(["token": tokens[1]])).status == 200)
        }
    }
}

@Suite("Forgot-password timing (SPEC §2.4)", .serialized)
struct ForgotTimingTests {
    /// Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical
    /// distributions.
    static func ksStatistic(_ a: [Double], _ b: [Double]) -> Double {
        let (x, y) = (a.sorted(), b.sorted())
        var (i, j, gap) = (0, 0, 0.0)
        while i < x.count, j < y.count {
            if x[i] <= y[j] { i += 1 } else { j += 1 }
            gap = max(gap, abs(Double(i) / Double(x.count) - Double(j) / Double(y.count)))
        }
        return gap
    }

    @Test("known and unknown emails get the same answer in indistinguishable time (KS test over 300 interleaved requests)")
    func indistinguishable() async throws {
        try await TestGatehouse.run(.live, configure: TestGatehouse.mailing) { api, _ in
            let known = (0..<5).map { "user\($0)@example.com" }
            for email in known { _ = try await api.signup(email, AuthAPITests.password) }
            var samples: [Bool: [Double]] = [true: [], false: []]
            var bodies: Set<String> = []
            let clock = ContinuousClock()
            for round in 0..<300 {
                // Interleaved at random, so drift on the machine falls on both alike.
                let isKnown = Bool.random()
                let email = isKnown ? known[round % known.count] : "nobody\(round)@example.com"
                let start = clock.now
                let response = try await api.json(.post, "/auth/password/forgot", jsonBody(["email": email]))
                let elapsed = clock.now - start
                #expect(response.status == 202)
                bodies.insert(response.body)
                samples[isKnown, default: []].append(Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
            }
            #expect(bodies.count == 1)
            let (a, b) = (samples[true] ?? [], samples[false] ?? [])
            // The KS critical value at α = 0.001 is 1.95 × sqrt((n + m) / (n m)); the answer is sent
            // before the account is looked at, so the two should come from one distribution.
            let critical = 1.95 * ((Double(a.count + b.count)) / Double(a.count * b.count)).squareRoot()
            let statistic = Self.ksStatistic(a, b)
            #expect(statistic < critical, "KS statistic \(statistic) ≥ \(critical): known and unknown emails are told apart by time")
        }
    }
}

@Suite("Mail templates")
struct MailTemplateFileTests {
    @Test("conf/mail/ holds exactly the built-in templates, to start an override from")
    func confCopies() throws {
        for name in ["password_reset.txt", "password_reset.html", "email_verification.txt", "email_verification.html"] {
            let shipped = try String(contentsOfFile: packageRoot + "/conf/mail/" + name, encoding: .utf8)
            let builtIn = try String(contentsOfFile: packageRoot + "/Sources/GatehouseServer/Resources/mail/" + name, encoding: .utf8)
            #expect(shipped == builtIn, "conf/mail/\(name) differs from the built-in template")
        }
    }

    @Test("an override in mail.template_dir replaces one template; a broken one stops startup naming the file")
    func overrides() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "Subject: Welcome aboard\nHi {{{email}}}, confirm here: {{{link}}}\n".write(toFile: directory.file("email_verification.txt"), atomically: true, encoding: .utf8)
        try await TestGatehouse.run(.live, configure: {
            TestGatehouse.mailing(&$0)
            $0.mail.templateDir = directory.path
        }) { api, gatehouse in
            _ = try await api.signup("alice@example.com", AuthAPITests.password)
            let mail = try await gatehouse.mails(atLeast: 1)[0]
            #expect(mail.contains("Subject: Welcome aboard"))
            #expect(decodedQuotedPrintable(mail).contains("Hi alice@example.com, confirm here: https://auth.example.com/auth/email/verify?token="))
        }
        try "Subject: x\n{{#broken}}\n".write(toFile: directory.file("password_reset.txt"), atomically: true, encoding: .utf8)
        var configuration = TestGatehouse.configuration(in: directory) { TestGatehouse.mailing(&$0) }
        configuration.mail.templateDir = directory.path
        do {
            _ = try GatehouseDependencies.open(configuration)
            Issue.record("a template that does not parse was accepted")
        } catch {
            #expect("\(error)".contains("password_reset.txt"))
        }
    }
}
