import Crypto
import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import Testing

@testable import GatehouseStore

extension TestGatehouse {
    /// Runs `body` against an in-process server (over loopback) using `redis` as its cache,
    /// once the cache is trusted. `redis.timeout` is 1 s, so that a loaded test machine does
    /// not make Redis look down; tests of a failing Redis set their own.
    static func withRedis(
        _ redis: RedisServer, configure: @escaping (inout GatehouseConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (any HTTPTarget, TestGatehouse) async throws -> Void
    ) async throws {
        try await run(.live, configure: {
            $0.redis.url = redis.url()
            $0.redis.timeout = .seconds(1)
            configure(&$0)
        }) { api, gatehouse in
            #expect(await eventually { gatehouse.cache.isTrusted })
            try await body(api, gatehouse)
        }
    }

    var cache: CachedAuthStore { dependencies.cache! }
}

func sessionKey(_ token: String) -> String {
    "gatehouse:session:" + SessionToken(cookieValue: token)!.hash.hex
}

@Suite("Redis session cache (SPEC §1, I2, I3)", .serialized)
struct RedisCacheTests {
    static let password = "cache test password"

    @Test("login writes through to Redis under the token's hash; the token itself is nowhere in Redis")
    func writeThrough() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { api, gatehouse in
            let signup = try await api.signup("w@example.com", Self.password)
            let token = try #require(signup.sessionToken())
            let userId = try #require(signup.json["id"] as? String)
            let entry = try await redis.cli("GET", sessionKey(token))
            #expect(entry.hasPrefix("v2\u{1F}\(userId)\u{1F}w@example.com"))
            #expect(try await redis.cli("SISMEMBER", "gatehouse:user:\(userId)", SessionToken(cookieValue: token)!.hash.hex) == "1")
            let dump = try await redis.cli("KEYS", "*") + (try await redis.cli("GET", sessionKey(token)))
            #expect(!dump.contains(token))
            // Redis answers, not SQLite: the session validates with its row gone from the
            // database file but its entry in Redis (see redisOnlySession for how long).
            try await gatehouse.database.pool.write { db in try db.execute(sql: "DELETE FROM sessions") }
            #expect(try await gatehouse.count("sessions") == 0)
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
        }
    }

    @Test("a session only in SQLite (Redis flushed) validates and is back-filled with TTL = min(remaining life, cache_ttl)")
    func readThrough() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis, configure: { $0.redis.cacheTTL = .seconds(120) }) { api, _ in
            let token = try #require(try await api.signup("r@example.com", Self.password).sessionToken())
            try await redis.cli("FLUSHALL")
            #expect(try await redis.cli("EXISTS", sessionKey(token)) == "0")
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
            #expect(try await eventually { try await redis.cli("EXISTS", sessionKey(token)) == "1" })
            let ttl = try #require(Int(try await redis.cli("PTTL", sessionKey(token))))
            #expect(ttl > 100_000 && ttl <= 120_000)
        }
    }

    @Test("a session deleted from SQLite behind Gatehouse's back lives on in Redis until its entry expires (TTL at most redis.cache_ttl), then is refused and not back-filled")
    func redisOnlySession() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis, configure: { $0.redis.cacheTTL = .seconds(120) }) { api, gatehouse in
            let token = try #require(try await api.signup("o@example.com", Self.password).sessionToken())
            let key = sessionKey(token)
            // cache_ttl is below the session lifetime: it bounds the entry's life.
            let ttl = try #require(Int(try await redis.cli("PTTL", key)))
            #expect(ttl > 0 && ttl <= 120_000)
            try await gatehouse.database.pool.write { db in try db.execute(sql: "DELETE FROM sessions") }
            #expect(try await gatehouse.count("sessions") == 0)
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
            // The TTL ends now rather than in two minutes.
            #expect(try await redis.cli("PEXPIRE", key, "1") == "1")
            #expect(try await eventually { try await api.get("/auth/me", cookie: token).status == 401 })
            #expect(try await redis.cli("EXISTS", key) == "0")
        }
    }

    @Test("logout, disable and admin revocation leave tombstones that refuse the session at once")
    func revocationTombstones() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { api, gatehouse in
            let first = try #require(try await api.signup("t@example.com", Self.password).sessionToken())
            let second = try #require(try await api.login("t@example.com", Self.password).sessionToken())
            #expect(try await api.logout(cookie: first).status == 200)
            #expect(try await redis.cli("GET", sessionKey(first)) == "revoked")
            #expect(try await api.get("/auth/me", cookie: first).status == 401)
            #expect(try await api.get("/auth/me", cookie: second).status == 200)
            #expect(try await gatehouse.store.setDisabled(email: "t@example.com", disabled: true, client: .commandLine))
            #expect(try await redis.cli("GET", sessionKey(second)) == "revoked")
            #expect(try await api.get("/auth/me", cookie: second).status == 401)
            // The maintenance round applies the outbox rows too (the request wrote only its own).
            #expect(try await eventually { try await gatehouse.cache.sqlite.pendingInvalidations(limit: 10).isEmpty })
        }
    }

    @Test("a logout survives Redis restarting from a snapshot taken before it: the restored entry is tombstoned again before any validation reads Redis")
    func revocationSurvivesRestore() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { api, gatehouse in
            let token = try #require(try await api.signup("restore@example.com", Self.password).sessionToken())
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
            #expect(try await redis.cli("EXISTS", sessionKey(token)) == "1")
            // The snapshot holds the live entry; the logout comes after it.
            #expect(try await redis.cli("SAVE") == "OK")
            #expect(try await api.logout(cookie: token).status == 200)
            #expect(try await redis.cli("GET", sessionKey(token)) == "revoked")
            #expect(try await eventually { try await gatehouse.cache.sqlite.pendingInvalidations(limit: 10).isEmpty })
            // A crash, and a restart from that snapshot: the entry is live again in Redis.
            redis.kill()
            #expect(await eventually { !gatehouse.cache.isTrusted })
            try await redis.start()
            #expect(await eventually { gatehouse.cache.isTrusted })
            #expect(try await redis.cli("GET", sessionKey(token)) == "revoked")
            #expect(try await api.get("/auth/me", cookie: token).status == 401)
            #expect(try await api.get("/auth/verify", cookie: token).status == 401)
        }
    }

    @Test("a Redis connection that closes distrusts Redis at once, before anything reconnects")
    func connectionLossDistrusts() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis, configure: { $0.redis.localCacheSize = 0 }) { api, gatehouse in
            let token = try #require(try await api.signup("lost@example.com", Self.password).sessionToken())
            let epoch = try #require(gatehouse.cache.trustEpoch)
            // Redis closes every client connection but stays up: nothing fails a command, so
            // only the closed connection itself can tell the cache that it may have missed
            // something (here, nothing: trust comes back after the replay).
            _ = try await redis.cli("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            #expect(await eventually { gatehouse.cache.trustEpoch.map { $0 > epoch } ?? false })
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
        }
    }

    @Test("a revocation made where Redis is not configured (a command without redis.url) reaches the servers that cache")
    func revocationWithoutRedisConfigured() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { api, gatehouse in
            let token = try #require(try await api.signup("shell@example.com", Self.password).sessionToken())
            for _ in 0..<3 { #expect(try await api.get("/auth/verify", cookie: token).status == 200) }
            #expect(try await redis.cli("EXISTS", sessionKey(token)) == "1")
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let config = directory.file("shell.yaml")
            try "database:\n  path: \(gatehouse.dependencies.configuration.database.path)\n".write(toFile: config, atomically: true, encoding: .utf8)
            #expect(try await runGatehouse(["user", "disable", "shell@example.com", "--config", config]).status == 0)
            #expect(try await eventually { try await api.get("/auth/verify", cookie: token).status == 401 })
            #expect(try await redis.cli("GET", sessionKey(token)) == "revoked")
            #expect(try await api.get("/auth/me", cookie: token).status == 401)
        }
    }

    @Test("a forged Redis entry mints nothing: an unauthenticated one, one under another key, another token's entry copied, on verify and on the API")
    func forgedEntries() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { api, gatehouse in
            let victim = try #require(try await api.signup("victim@example.com", Self.password).sessionToken())
            #expect(try await api.get("/auth/me", cookie: victim).status == 200)
            let genuine = try await redis.cli("GET", sessionKey(victim))
            let user = try #require(try await gatehouse.store.user(email: "victim@example.com"))
            func forged(_ token: SessionToken, key: SymmetricKey) -> String {
                let now = Date()
                let session = Session(
                    id: "forged", tokenHash: token.hash, userId: user.id, createdAt: now, expiresAt: now.addingTimeInterval(3600), lastSeenAt: now,
                    ip: "203.0.113.9", userAgent: "attacker"
                )
                return SessionCacheEntry(key: key).encode(user, session)
            }
            let unsigned = forged(SessionToken.generate(), key: SymmetricKey(size: .bits256)).split(separator: "\u{1F}").dropLast().joined(separator: "\u{1F}")
            let cases: [(String, (SessionToken) -> String)] = [
                ("the format without its MAC", { _ in unsigned }),
                ("the old unauthenticated v1 format", { _ in unsigned.replacingOccurrences(of: "v2", with: "v1") }),
                ("a MAC under another key", { forged($0, key: SymmetricKey(size: .bits256)) }),
                ("the victim's genuine entry under another token's key", { _ in genuine }),
            ]
            for (name, value) in cases {
                let attacker = SessionToken.generate()
                #expect(try await redis.cli("SET", sessionKey(attacker.cookieValue), value(attacker), "PX", "600000") == "OK")
                #expect(try await api.get("/auth/verify", cookie: attacker.cookieValue).status == 401, "\(name): verify")
                #expect(try await api.get("/auth/me", cookie: attacker.cookieValue).status == 401, "\(name): me")
            }
            // The genuine entry still answers for its own token, and only the key makes an
            // entry (the control: with it, a session SQLite never heard of would pass).
            #expect(try await api.get("/auth/verify", cookie: victim).status == 200)
            let minted = SessionToken.generate()
            #expect(try await redis.cli("SET", sessionKey(minted.cookieValue), forged(minted, key: gatehouse.cache.entries.key), "PX", "600000") == "OK")
            #expect(try await api.get("/auth/me", cookie: minted.cookieValue).status == 200)
        }
    }

    @Test("refreshing a cached entry never overwrites a tombstone, keeps the TTL, and never creates a key")
    func refreshRespectsTombstones() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { _, gatehouse in
            let client = gatehouse.cache.redis
            func refresh(_ key: String) async throws {
                _ = try await client.send("EVAL", CachedAuthStore.refreshScript, "1", key, "v1-new", "revoked")
            }
            try await redis.cli("SET", "gatehouse:session:t", "revoked", "PX", "100000")
            try await refresh("gatehouse:session:t")
            #expect(try await redis.cli("GET", "gatehouse:session:t") == "revoked")
            try await redis.cli("SET", "gatehouse:session:v", "v1-old", "PX", "100000")
            try await refresh("gatehouse:session:v")
            #expect(try await redis.cli("GET", "gatehouse:session:v") == "v1-new")
            #expect((Int(try await redis.cli("PTTL", "gatehouse:session:v")) ?? 0) > 90_000)
            try await refresh("gatehouse:session:missing")
            #expect(try await redis.cli("EXISTS", "gatehouse:session:missing") == "0")
        }
    }

    @Test("redis-server killed mid-traffic: requests keep succeeding from SQLite, no cookie cleared, latency bounded")
    func killedMidTraffic() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis, configure: { $0.redis.timeout = .milliseconds(50) }) { api, gatehouse in
            let token = try #require(try await api.signup("k@example.com", Self.password).sessionToken())
            var latencies: [Duration] = []
            for index in 0..<200 {
                if index == 50 { redis.kill() }
                let start = ContinuousClock.now
                let response = try await api.get("/auth/me", cookie: token)
                latencies.append(ContinuousClock.now - start)
                #expect(response.status == 200)
                #expect(response.setCookies.isEmpty)
            }
            // Bounded by the Redis timeout (50 ms), compared with the same run before the kill:
            // medians, so that a busy machine's noise does not decide the result.
            #expect(median(latencies[50...]) < median(latencies[..<50]) + .milliseconds(100))
            let ready = try await api.get("/readyz")
            #expect(ready.status == 200)
            #expect(ready.json["status"] as? String == "degraded")
            #expect(try await api.logout(cookie: token).status == 200)
            #expect(try await api.get("/auth/me", cookie: token).status == 401)
            // The revocation waits in the outbox for Redis.
            #expect(try await gatehouse.cache.sqlite.pendingInvalidations(limit: 10).count == 1)
            try await redis.start(empty: true)
            #expect(await eventually { gatehouse.cache.isTrusted })
            #expect(try await gatehouse.cache.sqlite.pendingInvalidations(limit: 10).isEmpty)
            #expect(try await redis.cli("GET", sessionKey(token)) == "revoked")
            #expect(try await api.get("/readyz").body == #"{"status":"ready"}"#)
        }
    }

    @Test("a hung Redis (SIGSTOP): requests succeed within the timeout, the breaker opens, and the cache comes back")
    func hungRedis() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis, configure: { $0.redis.timeout = .milliseconds(50) }) { api, gatehouse in
            let token = try #require(try await api.signup("h@example.com", Self.password).sessionToken())
            var before: [Duration] = []
            for _ in 0..<30 {
                let start = ContinuousClock.now
                _ = try await api.get("/auth/me", cookie: token)
                before.append(ContinuousClock.now - start)
            }
            redis.hang()
            var during: [Duration] = []
            var breakerOpened = false
            let until = ContinuousClock.now + .seconds(3)
            while ContinuousClock.now < until {
                let start = ContinuousClock.now
                let response = try await api.get("/auth/me", cookie: token)
                during.append(ContinuousClock.now - start)
                #expect(response.status == 200)
                #expect(response.setCookies.isEmpty)
                if try await api.get("/readyz").json["redis"] as? String == "circuit_open" { breakerOpened = true }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(median(during[...]) < median(before[...]) + .milliseconds(100))
            #expect(breakerOpened)
            #expect(gatehouse.cache.redis.isCircuitOpen)
            redis.resume()
            #expect(await eventually { gatehouse.cache.isTrusted })
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
        }
    }

    @Test("Redis restarted empty: sessions validate from SQLite and are back-filled")
    func restartedEmpty() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { api, gatehouse in
            let token = try #require(try await api.signup("e@example.com", Self.password).sessionToken())
            redis.kill()
            // Wait until the outage is noticed; otherwise the trust seen next may be the old one.
            #expect(await eventually { !gatehouse.cache.isTrusted })
            try await redis.start(empty: true)
            #expect(await eventually { gatehouse.cache.isTrusted })
            #expect(try await api.get("/auth/me", cookie: token).status == 200)
            #expect(try await eventually { try await redis.cli("EXISTS", sessionKey(token)) == "1" })
        }
    }

    @Test("no token or password reaches the logs with Redis in the path")
    func noSecretsInLogs() async throws {
        let redis = try await RedisServer(password: "redis-secret-password")
        defer { redis.shutdown() }
        try await TestGatehouse.withRedis(redis) { api, gatehouse in
            let token = try #require(try await api.signup("l@example.com", Self.password).sessionToken())
            _ = try await api.get("/auth/me", cookie: token)
            redis.kill()
            _ = try await api.get("/auth/me", cookie: token)
            _ = try await api.logout(cookie: token)
            let logs = gatehouse.logs.text
            #expect(logs.contains("redis cache unavailable"))
            for secret in [token, Self.password, "redis-secret-password"] {
                #expect(!logs.contains(secret))
            }
        }
    }
}

func median(_ values: ArraySlice<Duration>) -> Duration {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}
