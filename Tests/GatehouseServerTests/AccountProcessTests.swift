import Foundation
import GRDB
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import HTTPTypes
import Testing

@Suite("Account mail through a real SMTP server, and account changes across instances", .serialized)
struct AccountProcessTests {
    static let password = AuthAPITests.password

    /// YAML for the `smtp` mailer pointed at `smtp` (STARTTLS, AUTH, its certificate trusted).
    static func smtpMailer(_ smtp: SMTPServer, passwordFile: String) -> String {
        """
        public_url: https://auth.example.com
        mail:
          mailer: smtp
          from: "Example <accounts@example.com>"
          smtp: {host: 127.0.0.1, port: \(smtp.port), security: starttls, username: gatehouse, password_file: \(passwordFile), timeout: 2s, ca_file: \(smtp.certificatePath)}
        """
    }

    @Test("signup and reset mails reach a real SMTP server over STARTTLS with AUTH; the mailed token works once")
    func delivered() async throws {
        let smtp = try await SMTPServer(security: .starttls, username: "gatehouse", password: "s3cret-pass")
        defer { smtp.shutdown() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "s3cret-pass\n".write(toFile: directory.file("smtp-password"), atomically: true, encoding: .utf8)
        let config = try writeTestConfiguration(in: directory, extra: Self.smtpMailer(smtp, passwordFile: directory.file("smtp-password")))
        let gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("gatehouse.log"))
        defer { gatehouse.terminate() }
        let api = SocketTarget(address: gatehouse.address)

        #expect(try await api.signup("alice@example.com", Self.password).status == 201)
        #expect(try await api.json(.post, "/auth/password/forgot", jsonBody(["email": "alice@example.com"])).status == 202)
        let mails = try await smtp.waitForMessages(count: 2)
        #expect(mails.allSatisfy { $0.recipients == ["alice@example.com"] && $0.from == "accounts@example.com" && $0.envelope.login == "gatehouse" })
        let reset = try #require(mails.compactMap { mailedToken($0.text, path: "https://auth.example.com/auth/password/reset") }.first)
        let verify = try #require(mails.compactMap { mailedToken($0.text, path: "https://auth.example.com/auth/email/verify") }.first)
        #expect(try await api.json(.post, "/auth/email/verify", jsonBody(["token": verify])).status == 200)
        #expect(try await api.json(.post, "/auth/password/reset", jsonBody(["token": reset, "new_password": "the new passphrase"])).status == 200)
        #expect(try await api.json(.post, "/auth/password/reset", jsonBody(["token": reset, "new_password": "another passphrase"])).status == 400)
        #expect(try await api.login("alice@example.com", "the new passphrase").json["email_verified"] as? Bool == true)
        // Never a token or the SMTP password in a log line (I1).
        for secret in [reset, verify, "s3cret-pass"] { #expect(!gatehouse.log.contains(secret)) }
    }

    @Test("a mail queued while the SMTP server is down is delivered once it is back, exactly once, across a gatehouse restart")
    func outage() async throws {
        let smtp = try await SMTPServer(security: .starttls, username: "gatehouse", password: "s3cret-pass")
        defer { smtp.shutdown() }
        smtp.stop()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "s3cret-pass".write(toFile: directory.file("smtp-password"), atomically: true, encoding: .utf8)
        let config = try writeTestConfiguration(in: directory, extra: Self.smtpMailer(smtp, passwordFile: directory.file("smtp-password")))
        var gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("first.log"))
        let api = SocketTarget(address: gatehouse.address)
        #expect(try await api.signup("alice@example.com", Self.password).status == 201)
        // The attempt fails while the server is down, and the message stays queued.
        #expect(await eventually { gatehouse.log.contains("mail not sent; will retry") })
        await gatehouse.stop()

        try await smtp.start()
        gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("second.log"))
        let mails = try await smtp.waitForMessages(count: 1)
        #expect(mailedToken(mails[0].text, path: "/auth/email/verify") != nil)
        #expect(await eventually { gatehouse.log.contains("mail sent") })
        // A third start finds nothing to send: the message went once.
        await gatehouse.stop()
        gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("third.log"))
        defer { gatehouse.terminate() }
        #expect(try await SocketTarget(address: gatehouse.address).get("/healthz").status == 200)
        try await Task.sleep(for: .seconds(3))
        #expect(try smtp.messages().count == 1)
        let database = try GatehouseDatabase(configuration: DatabaseConfiguration(path: directory.file("gatehouse.sqlite")))
        let rows = try database.pool.read { db in try Row.fetchAll(db, sql: "SELECT sent_at, attempts, message FROM mail_outbox") }
        #expect(rows.count == 1)
        #expect(rows.first?["sent_at"] as Int64? != nil)
        #expect((rows.first?["attempts"] as Int?) ?? 0 >= 1)
        // Sent: the text, which carried a token, is gone from the database.
        #expect(rows.first?["message"] as String? == "")
    }

    @Test("a password change on instance A revokes a session held on instance B, also while Redis is down on A")
    func changeRevokesEverywhere() async throws {
        let instances = try await TwoInstances.start(redisTimeout: "2s")
        defer { instances.terminate() }
        let (a, b) = (instances.a, instances.b)
        let onA = try #require(try await a.signup("alice@example.com", Self.password).sessionToken())
        let onB = try #require(try await b.login("alice@example.com", Self.password).sessionToken())
        // Cached on B (Redis and B's in-process cache) before the change.
        #expect(try await b.get("/auth/verify", cookie: onB).status == 200)
        #expect(try await b.get("/auth/verify", cookie: onB).status == 200)
        let changed = try await a.json(.post, "/auth/password", jsonBody(["current_password": Self.password, "new_password": "first new passphrase"]), cookie: onA)
        #expect(changed.status == 200)
        #expect(try await b.get("/auth/verify", cookie: onB).status == 401)
        let rotated = try #require(changed.sessionToken())
        #expect(try await b.get("/auth/verify", cookie: rotated).status == 200)

        // Again with Redis down when A changes the password: B's cached copy must not come back.
        let later = try #require(try await b.login("alice@example.com", "first new passphrase").sessionToken())
        #expect(try await b.get("/auth/verify", cookie: later).status == 200)
        try await instances.redis.cli("SAVE")
        instances.redis.kill()
        let second = try await a.json(.post, "/auth/password", jsonBody(["current_password": "first new passphrase", "new_password": "second new passphrase"]), cookie: rotated)
        #expect(second.status == 200)
        #expect(try await b.get("/auth/verify", cookie: later).status == 401)
        // Redis comes back from its snapshot, still holding the session as cached.
        try await instances.redis.start()
        #expect(await instances.bothReady())
        #expect(try await b.get("/auth/verify", cookie: later).status == 401)
        #expect(try await a.get("/auth/verify", cookie: later).status == 401)
        #expect(try await b.get("/auth/verify", cookie: try #require(second.sessionToken())).status == 200)
    }
}

@Suite("Account commands (SPEC §5)")
struct AccountCommandTests {
    @Test("user verify-email admits an unverified user under require_verified_email; user reset-mfa turns TOTP off; both audited")
    func commands() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory, extra: "require_verified_email: true")
        func gatehouse(_ arguments: String...) async throws -> CommandResult { try await runGatehouse(arguments + ["--config", config]) }
        let server = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"))
        defer { server.terminate() }
        let api = SocketTarget(address: server.address)
        let (session, _, _) = try await MFALoginTests.enrol(api)
        #expect(try await api.get("/auth/verify", cookie: session).status == 401)

        let verified = try await gatehouse("user", "verify-email", "Alice@example.com")
        #expect(verified.status == 0)
        #expect(verified.stdout == "verified alice@example.com\n")
        #expect(try await api.get("/auth/verify", cookie: session).status == 200)
        #expect(try await api.login("alice@example.com", AuthAPITests.password).json["mfa_required"] as? Bool == true)

        let reset = try await gatehouse("user", "reset-mfa", "alice@example.com")
        #expect(reset.status == 0)
        #expect(try await api.login("alice@example.com", AuthAPITests.password).sessionToken() != nil)
        let missing = try await gatehouse("user", "reset-mfa", "nobody@example.com")
        #expect(missing.status == 1)
        #expect(missing.stderr == "gatehouse: error: no account for nobody@example.com\n")
        let audit = try await gatehouse("audit", "--user", "alice@example.com", "--json").stdout
        #expect(audit.contains(#""event":"email_verified""#) && audit.contains(#""event":"mfa_disabled""#))
    }
}
