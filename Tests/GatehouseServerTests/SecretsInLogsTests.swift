import Foundation
import GatehouseTestSupport
import HTTPTypes
import Testing

/// I1 over a whole run of a real process at the most verbose log level: every secret the run
/// produced or was given is searched for in everything it logged.
@Suite("No secret in the logs of a whole run")
struct SecretsInLogsTests {
    @Test("trace-level logs of signup, login, mail, reset, TOTP, recovery codes, MFA login, verify, logout and the CLI hold none of their secrets")
    func wholeRun() async throws {
        let smtp = try await SMTPServer(security: .starttls, username: "gatehouse", password: "smtp-canary-\(UUID().uuidString)")
        defer { smtp.shutdown() }
        let redisPassword = "redis-canary-\(UUID().uuidString)"
        let redis = try await RedisServer(password: redisPassword)
        defer { redis.shutdown() }
        try await EchoUpstream.with { appPort in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let smtpPassword = try #require(smtp.password)
            try "\(smtpPassword)\n".write(toFile: directory.file("smtp-password"), atomically: true, encoding: .utf8)
            let config = try writeTestConfiguration(
                in: directory,
                extra: AccountProcessTests.smtpMailer(smtp, passwordFile: directory.file("smtp-password")) + "\n"
                    + singleRouteYAML(appPort: appPort, prefix: "/app/", auth: "required"))
            // writeTestConfiguration logs at trace: the level that says the most.
            let gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"), environment: ["GATEHOUSE_REDIS_URL": redis.url()])
            defer { gatehouse.terminate() }
            let api = SocketTarget(address: gatehouse.address)
            var secrets = [smtpPassword, redisPassword]

            let password = "first-canary-\(UUID().uuidString)"
            let newPassword = "second-canary-\(UUID().uuidString)"
            secrets += [password, newPassword]
            let signup = try await api.signup("sweep@example.com", password)
            secrets.append(try #require(signup.sessionToken()))
            #expect(try await api.json(.post, "/auth/password/forgot", jsonBody(["email": "sweep@example.com"])).status == 202)
            let mails = try await smtp.waitForMessages(count: 2)
            let reset = try #require(mails.compactMap { mailedToken($0.text, path: "https://auth.example.com/auth/password/reset") }.first)
            let verify = try #require(mails.compactMap { mailedToken($0.text, path: "https://auth.example.com/auth/email/verify") }.first)
            secrets += [reset, verify]
            #expect(try await api.json(.post, "/auth/email/verify", jsonBody(["token": verify])).status == 200)
            let resetAnswer = try await api.json(.post, "/auth/password/reset", jsonBody(["token": reset, "new_password": newPassword]))
            #expect(resetAnswer.status == 200)
            // A wrong password and a reused token are logged as failures, without what was typed.
            #expect(try await api.login("sweep@example.com", password).status == 401)
            #expect(try await api.json(.post, "/auth/password/reset", jsonBody(["token": reset, "new_password": newPassword + "x"])).status == 400)

            let session = try #require(try await api.login("sweep@example.com", newPassword).sessionToken())
            secrets.append(session)
            let setup = try await api.json(.post, "/auth/mfa/totp/setup", "{}", cookie: session)
            let totpSecret = try #require(setup.json["secret"] as? String)
            secrets.append(totpSecret)
            let code = try await pyotpCode(totpSecret)
            let confirmed = try await api.json(.post, "/auth/mfa/totp/confirm", jsonBody(["code": code]), cookie: session)
            let recovery = try #require(confirmed.json["recovery_codes"] as? [String])
            secrets += recovery

            let challenge = try await api.login("sweep@example.com", newPassword)
            let mfaToken = try #require(challenge.json["mfa_token"] as? String)
            secrets.append(mfaToken)
            let second = try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": mfaToken, "recovery_code": recovery[0]]))
            let mfaSession = try #require(second.sessionToken())
            secrets.append(mfaSession)
            #expect(try await api.get("/app/hello", cookie: mfaSession).status == 200)
            #expect(try await api.get("/auth/verify", cookie: mfaSession).status == 200)
            #expect(try await api.get("/auth/me", cookie: mfaSession).status == 200)
            #expect(try await api.logout(cookie: mfaSession).status < 300)
            #expect(try await api.get("/auth/me", cookie: mfaSession).status == 401)

            let cliPassword = "cli-canary-\(UUID().uuidString)"
            secrets.append(cliPassword)
            let added = try await runGatehouse(["user", "add", "cli@example.com", "--config", config], stdin: "\(cliPassword)\n", environment: ["GATEHOUSE_REDIS_URL": redis.url()])
            #expect(added.status == 0)
            await gatehouse.stop()

            let log = gatehouse.log
            #expect(log.contains("/auth/login/mfa"))
            #expect(log.split(separator: "\n").count > 40)
            let cliOutput = added.stdout + added.stderr
            for secret in secrets {
                #expect(!log.contains(secret), "a secret is in the log")
                #expect(!cliOutput.contains(secret), "a secret is in the CLI's output")
            }
            // The recovery codes as typed, without their dash, too.
            for code in recovery { #expect(!log.contains(code.replacingOccurrences(of: "-", with: ""))) }
        }
    }
}
