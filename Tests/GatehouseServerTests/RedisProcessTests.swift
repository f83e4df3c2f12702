import Foundation
import GatehouseTestSupport
import Testing

@testable import GatehouseStore

/// Two real `gatehouse serve` processes, one redis-server and one SQLite file.
struct TwoInstances {
    let redis: RedisServer
    let directory: TemporaryDirectory
    let config: String
    let first: GatehouseProcess
    let second: GatehouseProcess
    var a: SocketTarget { SocketTarget(address: first.address) }

    /// The entry codec with the key the instances created beside their database.
    func entries() throws -> SessionCacheEntry {
        SessionCacheEntry(key: try CacheEntryKey.load(path: CacheEntryKey.defaultPath(databasePath: directory.file("gatehouse.sqlite"))))
    }
    var b: SocketTarget { SocketTarget(address: second.address) }

    /// Both instances on one Redis and one SQLite file; `extra` is more YAML (upstreams, routes).
    /// `redisTimeout` is short by default (the lease tests measure it); tests that count
    /// Redis commands use a long one, so that a loaded machine does not switch Redis off.
    static func start(environment: [String: String] = [:], extra: String = "", redisTimeout: String = "50ms") async throws -> TwoInstances {
        let redis = try await RedisServer()
        let directory = try TemporaryDirectory()
        let config = try writeTestConfiguration(in: directory, extra: "redis:\n  url: \(redis.url())\n  timeout: \(redisTimeout)\n" + extra)
        let first = try await GatehouseProcess(configPath: config, logPath: directory.file("first.log"), environment: environment)
        let second = try await GatehouseProcess(configPath: config, logPath: directory.file("second.log"), environment: environment)
        let instances = TwoInstances(redis: redis, directory: directory, config: config, first: first, second: second)
        #expect(await instances.bothReady())
        return instances
    }

    func bothReady() async -> Bool {
        await eventually {
            let statuses = [try? await a.get("/readyz").body, try? await b.get("/readyz").body]
            return statuses.allSatisfy { $0 == #"{"status":"ready"}"# }
        }
    }

    func stop() async {
        await first.stop()
        await second.stop()
        terminate()
    }

    /// Ends everything at once; safe to call again, and from `defer`.
    func terminate() {
        first.terminate()
        second.terminate()
        redis.shutdown()
        directory.remove()
    }
}

@Suite("Several instances sharing Redis and SQLite (real processes)", .serialized)
struct RedisProcessTests {
    static let password = "two instance password"

    @Test("sessions made on one instance validate on the other; a revocation on one is seen by the other before it returns")
    func sharedSessions() async throws {
        let instances = try await TwoInstances.start()
        defer { instances.terminate() }
        let (a, b) = (instances.a, instances.b)
        let signup = try await a.signup("two@example.com", Self.password)
        let token = try #require(signup.sessionToken())
        #expect(try await b.get("/auth/me", cookie: token).status == 200)
        let other = try #require(try await b.login("two@example.com", Self.password).sessionToken())
        #expect(try await a.get("/auth/me", cookie: other).status == 200)
        for _ in 0..<20 {
            let fresh = try #require(try await a.login("two@example.com", Self.password).sessionToken())
            #expect(try await b.get("/auth/me", cookie: fresh).status == 200)
            #expect(try await b.logout(cookie: fresh).status == 200)
            // No delay: the tombstone was written before the logout answered.
            #expect(try await a.get("/auth/me", cookie: fresh).status == 401)
        }
        // The command line revokes through the same outbox and tombstones.
        let revoke = try await runGatehouse(["session", "revoke", "--user", "two@example.com", "--config", instances.config])
        #expect(revoke.status == 0)
        #expect(try await a.get("/auth/me", cookie: token).status == 401)
        #expect(try await b.get("/auth/me", cookie: other).status == 401)
        await instances.stop()
    }

    @Test("Redis restarted with stale data after revocations made during the outage: revoked sessions stay revoked on every instance")
    func staleRestart() async throws {
        let instances = try await TwoInstances.start()
        defer { instances.terminate() }
        let (a, b, redis) = (instances.a, instances.b, instances.redis)
        let loggedOut = try #require(try await a.signup("stale1@example.com", Self.password).sessionToken())
        let kept = try #require(try await b.login("stale1@example.com", Self.password).sessionToken())
        let disabled = try #require(try await b.signup("stale2@example.com", Self.password).sessionToken())
        for token in [loggedOut, kept, disabled] {
            #expect(try await a.get("/auth/me", cookie: token).status == 200)
            #expect(try await b.get("/auth/me", cookie: token).status == 200)
            #expect(try await redis.cli("GET", sessionKey(token)).hasPrefix("v2"))
        }
        // The snapshot Redis will come back with holds all three as valid.
        #expect(try await redis.cli("SAVE") == "OK")
        redis.kill()
        #expect(try await eventually { try await a.get("/readyz").json["status"] as? String == "degraded" })
        #expect(try await eventually { try await b.get("/readyz").json["status"] as? String == "degraded" })

        #expect(try await a.logout(cookie: loggedOut).status == 200)
        let disable = try await runGatehouse(["user", "disable", "stale2@example.com", "--config", instances.config])
        #expect(disable.status == 0)
        for target in [a, b] {
            #expect(try await target.get("/auth/me", cookie: loggedOut).status == 401)
            #expect(try await target.get("/auth/me", cookie: disabled).status == 401)
            #expect(try await target.get("/auth/me", cookie: kept).status == 200)
        }

        // Hammer both instances with the revoked sessions while Redis comes back stale.
        let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
            for target in [a, b] {
                for token in [loggedOut, disabled] {
                    group.addTask {
                        var seen: [Int] = []
                        let until = ContinuousClock.now + .seconds(3)
                        while ContinuousClock.now < until {
                            seen.append(try await target.get("/auth/me", cookie: token).status)
                        }
                        return seen
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            try await redis.start()
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        #expect(statuses.count > 20)
        #expect(statuses.allSatisfy { $0 == 401 })
        #expect(await instances.bothReady())
        for target in [a, b] {
            #expect(try await target.get("/auth/me", cookie: loggedOut).status == 401)
            #expect(try await target.get("/auth/me", cookie: disabled).status == 401)
            #expect(try await target.get("/auth/me", cookie: kept).status == 200)
        }
        #expect(try await redis.cli("GET", sessionKey(loggedOut)) == "revoked")
        #expect(try await redis.cli("GET", sessionKey(disabled)) == "revoked")
        await instances.stop()
    }
}
