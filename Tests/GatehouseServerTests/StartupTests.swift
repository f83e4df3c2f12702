import Foundation
import GRDB
import GatehouseCore
import GatehouseTestSupport
import Testing

@Suite("Startup with Redis", .serialized)
struct StartupTests {
    @Test("with Redis reachable, the server listens only once Redis is trusted: its first answer reads Redis, after the outbox was replayed")
    func trustedBeforeServing() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // A long Redis timeout: on a loaded machine a replay command past 50 ms would make the
        // server give up on Redis and listen degraded, which is not what is tested here.
        let config = try writeTestConfiguration(in: directory, extra: "redis:\n  url: \(redis.url())\n  timeout: 2s\n")
        #expect(try await runGatehouse(["migrate", "--config", config]).status == 0)
        // A long outbox (revocations made while no server ran): its replay is the first
        // round's longest step, so a server that listened before it would answer first.
        let queue = try DatabaseQueue(path: directory.file("gatehouse.sqlite"))
        try await queue.write { db in
            let insert = try db.makeStatement(sql: "INSERT INTO cache_invalidations (token_hash, created_at) VALUES (?, 0)")
            for _ in 0..<50_000 { try insert.execute(arguments: [SessionToken.generate().hash.hex]) }
        }
        let gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("gatehouse.log"))
        defer { gatehouse.terminate() }
        let api = SocketTarget(address: gatehouse.address)
        // The very first answer: Redis trusted, the outbox empty.
        #expect(try await api.get("/readyz").body == #"{"status":"ready"}"#)
        #expect(try await queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM cache_invalidations") } == 0)
    }

    @Test("with Redis down, the server listens after one connect timeout and serves from SQLite (degraded)")
    func servesWithoutRedis() async throws {
        let redis = try await RedisServer()
        let url = redis.url()
        redis.shutdown()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory, extra: "redis:\n  url: \(url)\n")
        let gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("gatehouse.log"))
        defer { gatehouse.terminate() }
        let api = SocketTarget(address: gatehouse.address)
        #expect(try await api.get("/readyz").body.contains(#""status":"degraded""#))
        let token = try #require(try await api.signup("startup@example.com", "startup password 1").sessionToken())
        #expect(try await api.get("/auth/me", cookie: token).status == 200)
    }
}
