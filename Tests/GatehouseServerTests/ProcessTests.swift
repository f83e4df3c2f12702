import Foundation
import GatehouseTestSupport
import Testing

@Suite("Real gatehouse processes", .serialized)
struct ProcessTests {
    static let password = "shared sqlite password"

    @Test("two serve processes sharing one SQLite file: signup on one, login on the other, logout on one revokes on the other")
    func twoInstances() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory)
        let first = try await GatehouseProcess(configPath: config, logPath: directory.file("first.log"))
        let second = try await GatehouseProcess(configPath: config, logPath: directory.file("second.log"))
        defer {
            first.terminate()
            second.terminate()
        }
        let a = SocketTarget(address: first.address)
        let b = SocketTarget(address: second.address)
        #expect(first.address != second.address)

        let signup = try await a.signup("shared@example.com", Self.password)
        #expect(signup.status == 201)
        let login = try await b.login("shared@example.com", Self.password)
        #expect(login.status == 200)
        let token = try #require(login.sessionToken())
        let signupToken = try #require(signup.sessionToken())
        #expect(try await a.get("/auth/me", cookie: token).status == 200)
        #expect(try await b.get("/auth/me", cookie: signupToken).status == 200)

        #expect(try await a.logout(cookie: token).status == 200)
        #expect(try await b.get("/auth/me", cookie: token).status == 401)
        #expect(try await a.get("/auth/me", cookie: token).status == 401)
        #expect(try await b.get("/auth/me", cookie: signupToken).status == 200)

        // Concurrent writes from both processes wait for each other instead of failing.
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<16 {
                let target = index.isMultiple(of: 2) ? a : b
                group.addTask { try await target.signup("user\(index)@example.com", Self.password).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 201 })

        await first.stop()
        await second.stop()
        // I1: neither process logged a token or the password, even at trace level.
        let logs = first.log + second.log
        #expect(logs.contains("path=/auth/login"))
        for secret in [token, signupToken, Self.password] {
            #expect(!logs.contains(secret))
        }
    }

    @Test("serve refuses to start on an invalid configuration, naming the key")
    func invalidConfiguration() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory, extra: "redis:\n  timeout: soon\n")
        let result = try await runGatehouse(["serve", "--config", config])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("gatehouse: configuration error: redis.timeout"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        let check = try await runGatehouse(["check-config", "--config", config])
        #expect(check.status == 2)
        let env = try await runGatehouse(["check-config", "--config", try writeTestConfiguration(in: directory)], environment: ["GATEHOUSE_LISTN": "x"])
        #expect(env.status == 2)
        #expect(env.stderr.contains("GATEHOUSE_LISTN"))
    }
}

@Suite("Command line (SPEC §5)", .serialized)
struct CommandLineTests {
    @Test("user add/list/disable/enable/delete, session list/revoke, audit, migrate, hash-password")
    func adminCommands() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory)
        func gatehouse(_ arguments: String..., stdin: String = "") async throws -> CommandResult {
            try await runGatehouse(arguments + ["--config", config], stdin: stdin)
        }
        let migrate = try await gatehouse("migrate")
        #expect(migrate.status == 0)
        #expect(try await gatehouse("check-config").status == 0)

        let add = try await gatehouse("user", "add", "Admin@Example.com", stdin: "admin password\n")
        #expect(add.status == 0)
        #expect(add.stdout.hasPrefix("created admin@example.com"))
        let duplicate = try await gatehouse("user", "add", "admin@example.com", stdin: "admin password\n")
        #expect(duplicate.status == 1)
        #expect(duplicate.stderr == "gatehouse: error: admin@example.com already has an account\n")
        #expect(try await gatehouse("user", "add", "short@example.com", stdin: "short\n").status == 1)
        #expect(try await gatehouse("user", "add", "nopass@example.com").status == 1)
        #expect(try await gatehouse("user", "add", "not-an-email", stdin: "long enough\n").status == 1)

        // The account made on the command line logs in over HTTP.
        let server = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"))
        defer { server.terminate() }
        let api = SocketTarget(address: server.address)
        let login = try await api.login("admin@example.com", "admin password")
        #expect(login.status == 200)
        let token = try #require(login.sessionToken())

        let list = try await gatehouse("user", "list")
        #expect(list.stdout.contains("admin@example.com\t"))
        #expect(list.stdout.contains("\tactive"))
        #expect(try await gatehouse("user", "list", "--json").stdout.contains(#""email":"admin@example.com""#))

        let sessions = try await gatehouse("session", "list", "--user", "admin@example.com", "--json")
        #expect(sessions.status == 0)
        let sessionId = try #require(sessions.stdout.split(separator: "\n").first.flatMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }?["id"] as? String)
        #expect(!sessions.stdout.contains(token))
        #expect(try await gatehouse("session", "revoke", "--id", sessionId).stdout == "revoked 1 session\n")
        #expect(try await api.get("/auth/me", cookie: token).status == 401)
        #expect(try await gatehouse("session", "revoke", "--id", sessionId).status == 1)
        #expect(try await gatehouse("session", "revoke").status != 0)
        #expect(try await gatehouse("session", "revoke", "--all", "--id", "x").status != 0)

        let again = try #require(try await api.login("admin@example.com", "admin password").sessionToken())
        #expect(try await gatehouse("user", "disable", "admin@example.com").status == 0)
        #expect(try await api.get("/auth/me", cookie: again).status == 401)
        #expect(try await api.login("admin@example.com", "admin password").status == 401)
        #expect(try await gatehouse("user", "enable", "admin@example.com").status == 0)
        let third = try #require(try await api.login("admin@example.com", "admin password").sessionToken())
        #expect(try await gatehouse("session", "revoke", "--user", "admin@example.com").stdout == "revoked 1 session\n")
        #expect(try await api.get("/auth/me", cookie: third).status == 401)
        #expect(try await gatehouse("session", "revoke", "--all").status == 0)

        let audit = try await gatehouse("audit", "--user", "admin@example.com", "--json", "--limit", "50")
        #expect(audit.status == 0)
        let events = audit.stdout.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let kinds = Set(events.compactMap { $0["event"] as? String })
        #expect(kinds.isSuperset(of: ["signup", "login", "session_revoked", "user_disabled", "user_enabled"]))
        #expect(try await gatehouse("audit", "--since", "1h", "--limit", "1").stdout.split(separator: "\n").count == 1)
        #expect(try await gatehouse("audit", "--since", "yesterday").status == 1)
        #expect(!audit.stdout.contains("admin password"))

        #expect(try await gatehouse("user", "delete", "admin@example.com").status == 0)
        #expect(try await gatehouse("user", "delete", "admin@example.com").status == 1)
        #expect(try await api.login("admin@example.com", "admin password").status == 401)
        await server.stop()

        let hash = try await gatehouse("hash-password", stdin: "some password\n")
        #expect(hash.status == 0)
        #expect(hash.stdout.hasPrefix("$argon2id$v=19$m=1024,t=1,p=1$"))
        #expect(!hash.stdout.contains("some password"))
        #expect(try await gatehouse("hash-password").status == 1)
        #expect(!server.log.contains("admin password"))
    }
}

@Suite("Operations on the command line: health, export, erasure, following the audit log")
struct OperationsCommandLineTests {
    @Test("gatehouse health probes the configured listener; user export holds no secret; delete --erase pseudonymises; audit --follow prints rows as they are written")
    func operations() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory)
        let listen = ["GATEHOUSE_LISTEN": "127.0.0.1:\(try freePort())"]
        func gatehouse(_ arguments: String..., stdin: String = "") async throws -> CommandResult {
            try await runGatehouse(arguments + ["--config", config], stdin: stdin, environment: listen)
        }
        // Nothing listens yet: unhealthy, exit 1.
        #expect(try await gatehouse("health").status == 1)
        let server = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"), environment: listen)
        defer { server.terminate() }
        #expect(try await gatehouse("health").status == 0)
        #expect(try await gatehouse("health", "--ready").status == 0)
        #expect(try await gatehouse("health", "--url", "http://\(server.address)/nowhere").status == 1)

        // audit --follow, started before the account exists, prints its rows as they come.
        let followed = directory.file("follow.out")
        FileManager.default.createFile(atPath: followed, contents: nil)
        let follow = Process()
        follow.executableURL = URL(fileURLWithPath: GatehouseProcess.binaryPath)
        follow.arguments = ["audit", "--follow", "--json", "--limit", "1", "--config", config]
        follow.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: followed))
        try follow.run()
        defer { follow.terminate(grace: .seconds(5)) }

        let api = SocketTarget(address: server.address)
        let password = "export canary password"
        let signup = try await api.signup("erase@example.com", password)
        let token = try #require(signup.sessionToken())
        #expect(try await api.login("erase@example.com", "wrong export password").status == 401)
        let seen = await eventually {
            let text = (try? String(contentsOfFile: followed, encoding: .utf8)) ?? ""
            return text.contains("\"signup\"") && text.contains("wrong_password")
        }
        #expect(seen)

        let export = try await gatehouse("user", "export", "erase@example.com")
        #expect(export.status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(export.stdout.utf8)) as? [String: Any])
        #expect((document["account"] as? [String: Any])?["email"] as? String == "erase@example.com")
        #expect((document["sessions"] as? [Any])?.count == 1)
        #expect(((document["audit"] as? [[String: Any]]) ?? []).contains { $0["event"] as? String == "signup" })
        for secret in [password, token, "$argon2id$"] { #expect(!export.stdout.contains(secret)) }
        #expect(try await gatehouse("user", "export", "nobody@example.com").status == 1)

        let erase = try await gatehouse("user", "delete", "--erase", "erase@example.com")
        #expect(erase.status == 0)
        #expect(erase.stdout.hasPrefix("erased erase@example.com: 1 sessions revoked"))
        #expect(try await api.get("/auth/me", cookie: token).status == 401)
        let audit = try await gatehouse("audit", "--json", "--limit", "100")
        #expect(!audit.stdout.contains("erase@example.com"))
        #expect(audit.stdout.contains("\"erased-"))
        #expect(try await gatehouse("user", "export", "erase@example.com").status == 1)
        #expect(try await gatehouse("user", "delete", "--erase", "erase@example.com").status == 1)
    }
}
