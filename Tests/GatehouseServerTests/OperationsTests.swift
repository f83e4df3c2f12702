import Foundation
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import HTTPTypes
import Testing

@Suite("Operations and resource limits")
struct OperationsTests {
    @Test("healthz and readyz answer 200 while SQLite serves; readyz 503 when it cannot")
    func health() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let health = try await api.get("/healthz")
            #expect(health.status == 200)
            #expect(health.body == #"{"status":"ok"}"#)
            let ready = try await api.get("/readyz")
            #expect(ready.status == 200)
            #expect(ready.body == #"{"status":"ready"}"#)
            try gatehouse.database.pool.close()
            let down = try await api.get("/readyz")
            #expect(down.status == 503)
            #expect(down.json["status"] as? String == "unavailable")
            // Fail closed (I5): with the store gone, nobody is authenticated.
            let me = try await api.get("/auth/me", cookie: SessionToken.generate().cookieValue)
            #expect(me.status == 500)
            #expect(try await api.get("/healthz").status == 200)
        }
    }

    @Test("a full hashing queue answers 503 with Retry-After instead of piling up")
    func overloaded() async throws {
        try await TestGatehouse.run(.live, configure: {
            $0.password.argon2 = Argon2Parameters(memoryKiB: 65536, iterations: 3, parallelism: 1)
            $0.password.workers = 1
            $0.password.queueLimit = 0
        }) { api, gatehouse in
            let responses = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
                for index in 0..<6 {
                    group.addTask { try await api.signup("busy\(index)@example.com", "a fine password") }
                }
                return try await group.reduce(into: [HTTPResult]()) { $0.append($1) }
            }
            let refused = responses.filter { $0.status == 503 }
            #expect(refused.count >= 1)
            #expect(responses.filter { $0.status == 201 }.count >= 1)
            for response in refused {
                #expect(response.headers[.retryAfter] == "1")
                #expect(response.json["error"] as? String == "overloaded")
                #expect(response.setCookies.isEmpty)
            }
            #expect(try await gatehouse.count("users") == responses.filter { $0.status == 201 }.count)
        }
    }

    @Test("no token or password ever appears in the logs of a full flow (I1)")
    func noSecretsInLogs() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            let password = "log-canary-password-\(UUID().uuidString)"
            let signup = try await api.signup("log@example.com", password)
            let login = try await api.login("log@example.com", password)
            _ = try await api.login("log@example.com", password + "-wrong")
            _ = try await api.login("nobody@example.com", password)
            let tokens = [try #require(signup.sessionToken()), try #require(login.sessionToken())]
            _ = try await api.get("/auth/me", cookie: tokens[1])
            _ = try await api.logout(cookie: tokens[1])
            _ = try await api.get("/auth/me", cookie: tokens[1])
            let logs = gatehouse.logs.text
            #expect(gatehouse.logs.count > 5)
            #expect(logs.contains("/auth/login"))
            for secret in tokens + [password, "log-canary-password"] {
                #expect(!logs.contains(secret))
            }
            let audit = try await gatehouse.store.auditEvents(AuditQuery(limit: 1000))
            let auditText = audit.map { "\($0)" }.joined()
            for secret in tokens + [password] {
                #expect(!auditText.contains(secret))
            }
        }
    }
}

@Suite("Graceful shutdown of a real process")
struct GracefulShutdownTests {
    /// Whether `response` is one whole HTTP response: a status line, headers and the body
    /// its Content-Length announces.
    static func isComplete(_ response: String) -> Bool {
        guard response.hasPrefix("HTTP/1.1 "), let end = response.range(of: "\r\n\r\n") else { return false }
        let head = response[..<end.lowerBound].lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return false }
        return response[end.upperBound...].utf8.count == length
    }

    @Test("SIGTERM during a stream of requests: each completes or is refused before it is accepted, none is cut mid-response, in-flight ones finish")
    func sigtermDuringStream() async throws {
        // Only completion bounds the drain here: the upstream runs in this (busy) test process,
        // so its pause may last longer than it says; a timeout would make the test time it.
        try await GatehouseProcess.withPublicEcho(environment: ["GATEHOUSE_SHUTDOWN_TIMEOUT": "120s"]) { gatehouse in
            let port = try #require(gatehouse.address.split(separator: ":").last.flatMap { Int($0) })
            // Three responses in flight across the signal: half their body sent, the rest later.
            let slow = Task {
                try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<3 {
                        group.addTask { try await rawHTTP(port: port, "GET /public/slow-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout: .seconds(60)) }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
            }
            // A stream of short requests on new connections, before, across and after the signal.
            let stream = Task {
                try await withThrowingTaskGroup(of: [String?].self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            var answers: [String?] = []
                            for index in 0..<400 {
                                let answer = try? await rawHTTP(port: port, "GET /public/n\(index) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout: .seconds(60))
                                answers.append(answer)
                                // Refused: the listener is closed, so is the stream's part in this test.
                                if answer == nil || answer == "" { break }
                            }
                            return answers
                        }
                    }
                    return try await group.reduce(into: [String?]()) { $0 += $1 }
                }
            }
            try await Task.sleep(for: .seconds(1))
            kill(gatehouse.pid, SIGTERM)
            let exited = await eventually(timeout: .seconds(150)) { !gatehouse.isRunning }
            #expect(exited)

            let answers = try await stream.value
            let completed = answers.compactMap { $0 }.filter { !$0.isEmpty }
            #expect(completed.count >= 4)
            for answer in completed {
                // Anything that began is whole: no truncated head, no short body.
                #expect(Self.isComplete(answer), "cut mid-response: \(answer.prefix(200))")
            }
            #expect(completed.allSatisfy { $0.hasPrefix("HTTP/1.1 200") || $0.hasPrefix("HTTP/1.1 503") })
            // Every worker ran until it was refused: the process really stopped accepting.
            #expect(answers.count < 4 * 400)
            for answer in try await slow.value {
                #expect(answer.hasPrefix("HTTP/1.1 200"))
                #expect(answer.hasSuffix("\r\n\r\n1234567890"))
            }
            #expect(gatehouse.log.contains("stopped"), "\(gatehouse.log.suffix(2000))")
        }
    }
}
