import Foundation
import GatehouseCore
import GatehouseTestSupport
import Logging
import Testing

@testable import GatehouseStore

/// Runs `body` with a client whose connection loop is running and connected (unless `connected` is false).
func withRedisClient<T: Sendable>(
    _ url: String, timeout: Duration = .seconds(5), connections: Int = 2, connected: Bool = true,
    _ body: @Sendable (RedisClient) async throws -> T
) async throws -> T {
    let endpoint = try #require(RedisEndpoint(url))
    let client = RedisClient(endpoint: endpoint, timeout: timeout, connections: connections, logger: Logger(label: "test"))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        if connected {
            #expect(await eventually { client.connectedCount == connections })
        }
        let result = try await body(client)
        group.cancelAll()
        return result
    }
}

@Suite("Redis client over hiredis (real redis-server)", .serialized)
struct RedisClientTests {
    @Test("1,000 parallel commands over two connections each get their own reply (pipelining does not mix replies)")
    func pipelining() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await withRedisClient(redis.url(), timeout: .seconds(5)) { client in
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<1000 {
                    group.addTask {
                        _ = try await client.send("SET", "key:\(index)", "value-\(index)-\(String(repeating: "x", count: index % 97))")
                        let reply = try await client.send("GET", "key:\(index)")
                        return reply.string == "value-\(index)-\(String(repeating: "x", count: index % 97))" ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            #expect(try await redis.cli("DBSIZE") == "1000")
        }
    }

    @Test("replies of every RESP type")
    func replyTypes() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        // What is tested is the replies, not the deadline: a long one, for a loaded machine.
        try await withRedisClient(redis.url(), timeout: .seconds(5)) { client in
            #expect(try await client.send("PING") == .simpleString("PONG"))
            #expect(try await client.send("INCR", "n") == .integer(1))
            #expect(try await client.send("GET", "missing") == .null)
            _ = try await client.send("RPUSH", "list", "a", "b\u{0}c", "")
            #expect(try await client.send("LRANGE", "list", "0", "-1") == .array([.bulkString(Array("a".utf8)), .bulkString([98, 0, 99]), .bulkString([])]))
            guard case .error(let message) = try await client.send("NOSUCHCOMMAND") else {
                Issue.record("expected an error reply")
                return
            }
            #expect(message.hasPrefix("ERR"))
            let binary = String(repeating: "é\r\n$*", count: 1000)
            _ = try await client.send("SET", "binary", binary)
            #expect(try await client.send("GET", "binary").string == binary)
        }
    }

    @Test("AUTH and SELECT on connect; a wrong password never connects")
    func authAndSelect() async throws {
        let redis = try await RedisServer(password: "s3cret pass")
        defer { redis.shutdown() }
        try await withRedisClient("redis://:s3cret%20pass@127.0.0.1:\(redis.port)/3") { client in
            _ = try await client.send("SET", "where", "db3")
        }
        #expect(try await redis.cli("GET", "where", database: 3) == "db3")
        #expect(try await redis.cli("GET", "where", database: 0) == "")
        try await withRedisClient("redis://:wrong@127.0.0.1:\(redis.port)/0", connected: false) { client in
            try await Task.sleep(for: .milliseconds(300))
            #expect(client.connectedCount == 0)
            await #expect(throws: RedisError.unavailable) { _ = try await client.send("PING") }
        }
    }

    @Test("a unix socket URL connects")
    func unixSocket() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socketPath = directory.file("redis.sock")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try findExecutable("redis-server"))
        process.arguments = ["--port", "0", "--unixsocket", socketPath, "--save", "", "--dir", directory.path]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        #expect(await eventually { FileManager.default.fileExists(atPath: socketPath) })
        let pong = try await withRedisClient("unix:\(socketPath)?db=2") { client in
            try await client.send("PING")
        }
        #expect(pong == .simpleString("PONG"))
    }

    @Test("a hung Redis (SIGSTOP): commands time out until the breaker opens, then fail with circuitOpen without being sent, and the client recovers")
    func hungRedis() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        // A timeout well above scheduling noise, so that the five timeouts end long before the
        // connection counts as hung (20 timeouts) and is dropped.
        try await withRedisClient(redis.url(), timeout: .milliseconds(200)) { client in
            redis.hang()
            // Every INCR that reaches the socket is executed once Redis resumes: the counter
            // tells how many commands were sent.
            var outcomes: [RedisError] = []
            for _ in 0..<8 {
                do {
                    _ = try await client.send("INCR", "sent")
                    Issue.record("a hung Redis answered")
                } catch let error as RedisError {
                    outcomes.append(error)
                }
            }
            // The breaker's threshold is 5 consecutive failures.
            #expect(outcomes.prefix(5).allSatisfy { $0 == .timeout }, "\(outcomes)")
            #expect(outcomes.dropFirst(5).allSatisfy { $0 == .circuitOpen }, "\(outcomes)")
            #expect(client.isCircuitOpen)
            redis.resume()
            #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
            #expect(!client.isCircuitOpen)
            // One more reply on each connection (round-robin): every command written before is done.
            for _ in 0..<2 { #expect(try await client.send("PING") == .simpleString("PONG")) }
            // The timed-out commands were written and waited for; the refused ones never left.
            #expect(try await redis.cli("GET", "sent") == String(outcomes.filter { $0 == .timeout }.count))
        }
    }

    @Test("a killed Redis fails at once with unavailable (no command waits for its timeout), and the client reconnects when it is back")
    func killedRedis() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        // A timeout no test run reaches: a command that waited for it would fail with .timeout.
        try await withRedisClient(redis.url(), timeout: .seconds(60)) { client in
            redis.kill()
            #expect(await eventually { client.connectedCount == 0 })
            await #expect(throws: RedisError.unavailable) { _ = try await client.send("PING") }
            try await redis.start(empty: true)
            #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
        }
    }

    @Test("redis URLs", arguments: [
        ("redis://127.0.0.1:6380/2", RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6380), username: nil, password: nil, database: 2)),
        ("redis://:pw@host", RedisEndpoint(address: .tcp(host: "host", port: 6379), username: nil, password: "pw", database: 0)),
        ("redis://pw@host:1", RedisEndpoint(address: .tcp(host: "host", port: 1), username: nil, password: "pw", database: 0)),
        ("redis://user:p%40ss@host/1", RedisEndpoint(address: .tcp(host: "host", port: 6379), username: "user", password: "p@ss", database: 1)),
        ("unix:/run/redis.sock?db=4", RedisEndpoint(address: .unix(path: "/run/redis.sock"), username: nil, password: nil, database: 4)),
    ])
    func urls(text: String, expected: RedisEndpoint) {
        #expect(RedisEndpoint(text) == expected)
        #expect(!(RedisEndpoint(text)?.redacted.contains("pw") ?? true))
        #expect(!(RedisEndpoint(text)?.redacted.contains("p@ss") ?? true))
    }

    @Test("bad redis URLs are refused", arguments: ["http://host", "redis://", "redis://host/x", "unix:relative", "redis://host:99999", "redis://host?x=1"])
    func badURLs(text: String) {
        #expect(RedisEndpoint(text) == nil)
    }
}

@Suite("Circuit breaker")
struct CircuitBreakerTests {
    @Test("opens after the threshold, lets one probe through after the cool-down, closes on success")
    func states() {
        var breaker = CircuitBreaker(threshold: 3, coolDown: .seconds(1))
        let start = ContinuousClock.now
        var steps: [Bool] = []
        for _ in 0..<2 {
            steps.append(breaker.allow(now: start))
            steps.append(breaker.recordFailure(now: start))
        }
        #expect(steps == [true, false, true, false])
        let opened = breaker.recordFailure(now: start)
        let duringCoolDown = breaker.allow(now: start + .milliseconds(500))
        let probe = breaker.allow(now: start + .seconds(1))
        let secondProbe = breaker.allow(now: start + .seconds(1))
        let reopened = breaker.recordFailure(now: start + .seconds(1))
        let nextProbe = breaker.allow(now: start + .seconds(2))
        #expect([opened, duringCoolDown, probe, secondProbe, reopened, nextProbe] == [true, false, true, false, true, true])
        breaker.recordSuccess()
        #expect(!breaker.isOpen)
        let allowed = breaker.allow(now: start + .seconds(2))
        #expect(allowed)
    }
}
