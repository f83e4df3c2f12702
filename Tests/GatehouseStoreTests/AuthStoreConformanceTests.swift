import Crypto
import Foundation
import GRDB
import GatehouseCore
import GatehouseTestSupport
import Logging
import Testing

@testable import GatehouseStore

/// The stores an `AuthStore` conformance runs against.
enum StoreBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `SQLiteAuthStore` alone.
    case sqlite
    /// `CachedAuthStore`: a real redis-server in front of SQLite, trusted.
    case redisCached

    var testDescription: String { rawValue }
}

/// Runs `body` with a fresh store of `backend` on a new database.
func withAuthStore<T: Sendable>(
    _ backend: StoreBackend, idleTimeout: Duration = .zero, _ body: @Sendable (any AuthStore, GatehouseDatabase) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let database = try GatehouseDatabase(configuration: DatabaseConfiguration(path: directory.file("db/gatehouse.sqlite")))
    try database.migrate()
    let sqlite = SQLiteAuthStore(
        database: database, policy: SessionPolicy(idleTimeout: idleTimeout),
        invalidationRetention: .seconds(86_400)
    )
    switch backend {
    case .sqlite:
        return try await body(sqlite, database)
    case .redisCached:
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        let client = RedisClient(endpoint: try #require(RedisEndpoint(redis.url())), timeout: .seconds(2), connections: 2, logger: Logger(label: "test"))
        let cache = CachedAuthStore(sqlite: sqlite, redis: client, entryKey: SymmetricKey(size: .bits256), cacheTTL: .seconds(600), sessionLifetime: .seconds(86_400), logger: Logger(label: "test"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            group.addTask { try await cache.run() }
            // A readiness wait, generous for a loaded machine: it ends as soon as Redis is trusted.
            if !(await eventually(timeout: .seconds(60)) { cache.isTrusted }) {
                let (rounds, failure) = cache.maintenanceState
                let ping = (try? await redis.cli("PING")) ?? "no answer"
                Issue.record("Redis never trusted: \(rounds) maintenance rounds, connections \(client.connectedCount), last failure \(failure ?? "none"), redis-cli PING \(ping)")
            }
            let result = try await body(cache, database)
            // Redis really was in front: the sessions the body validated were cached there.
            #expect(try await redis.cli("DBSIZE") != "0")
            group.cancelAll()
            return result
        }
    }
}

/// The SQLite store under `store` (itself, or the one a cache fronts).
func sqliteStore(_ store: any AuthStore) throws -> SQLiteAuthStore {
    if let cached = store as? CachedAuthStore { return cached.sqlite }
    return try #require(store as? SQLiteAuthStore)
}

/// The behaviour every `AuthStore` shares (SPEC §1), run against the SQLite store and the
/// Redis-cached one alike.
@Suite("AuthStore conformance: SQLite and Redis-cached")
struct AuthStoreConformanceTests {
    @Test("validation: live, unknown, expired (and deleted), disabled user", arguments: StoreBackend.allCases)
    func validation(backend: StoreBackend) async throws {
        try await withAuthStore(backend) { store, database in
            let live = SessionToken.generate()
            let user = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(live), client: client)
            guard case .valid(let found, _) = try await store.validateSession(live.hash, now: Date()) else {
                Issue.record("live session did not validate")
                return
            }
            #expect(found == user)
            #expect(try await store.validateSession(SessionToken.generate().hash, now: Date()) == .unknown)

            let old = SessionToken.generate()
            try await store.recordLogin(user: user, session: newSession(old, lifetime: 60), replacing: [], upgradedPasswordHash: nil, client: client)
            #expect(try await store.validateSession(old.hash, now: Date().addingTimeInterval(61)) == .expired)
            #expect(try await store.validateSession(old.hash, now: Date()) == .unknown)
            #expect(try await store.auditEvents(AuditQuery()).first?.kind == .sessionExpired)

            #expect(try await store.setDisabled(email: "a@example.com", disabled: true, client: client))
            #expect(try await store.validateSession(live.hash, now: Date()) == .unknown)
            let sessions = try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sessions") }
            #expect(sessions == 0)
        }
    }

    @Test("last_seen is written at most once a minute per session", arguments: StoreBackend.allCases)
    func lastSeenThrottle(backend: StoreBackend) async throws {
        try await withAuthStore(backend) { store, database in
            let token = SessionToken.generate()
            let start = Date()
            _ = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(token, now: start), client: client)
            func lastSeen() async throws -> Int64? {
                // What the batch holds is committed first: the read sees every write due so far.
                try await sqliteStore(store).commitLastSeen()
                return try await database.pool.read { db in try Int64.fetchOne(db, sql: "SELECT last_seen_at FROM sessions") }
            }
            let initial = try await lastSeen()
            for offset in [1.0, 20, 59] {
                _ = try await store.validateSession(token.hash, now: start.addingTimeInterval(offset))
            }
            #expect(try await lastSeen() == initial)
            _ = try await store.validateSession(token.hash, now: start.addingTimeInterval(61))
            #expect(try await lastSeen() == Timestamp.milliseconds(start.addingTimeInterval(61)))
            _ = try await store.validateSession(token.hash, now: start.addingTimeInterval(90))
            #expect(try await lastSeen() == Timestamp.milliseconds(start.addingTimeInterval(61)))
        }
    }

    @Test(
        "a due last_seen write never holds up the validation: it is answered while another process holds the write lock, and the writes due meanwhile are committed together afterwards",
        arguments: StoreBackend.allCases
    )
    func lastSeenWriteBehind(backend: StoreBackend) async throws {
        try await withAuthStore(backend) { store, database in
            let start = Date()
            let tokens = (0..<20).map { _ in SessionToken.generate() }
            _ = try await store.createUser(email: "a@example.com", passwordHash: "h", session: nil, client: client)
            let user = try #require(try await store.user(email: "a@example.com"))
            for token in tokens {
                try await store.recordLogin(user: user, session: newSession(token, now: start), replacing: [], upgradedPasswordHash: nil, client: client)
            }
            // Another process takes the database's write lock and keeps it.
            let other = try DatabaseQueue(path: database.path)
            let locked = AsyncStream<Void>.makeStream()
            let release = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await other.writeWithoutTransaction { db in
                    try db.execute(sql: "BEGIN IMMEDIATE")
                    locked.continuation.yield()
                    // Held until the validations below are answered.
                    let semaphore = DispatchSemaphore(value: 0)
                    Task { for await _ in release.stream { break }; semaphore.signal() }
                    semaphore.wait()
                    try db.execute(sql: "COMMIT")
                }
            }
            for await _ in locked.stream { break }
            let seen = start.addingTimeInterval(61)
            for token in tokens {
                guard case .valid = try await store.validateSession(token.hash, now: seen) else {
                    Issue.record("a session due for its write did not validate")
                    continue
                }
            }
            release.continuation.yield()
            try await holder.value
            #expect(
                try await eventually {
                    try await database.pool.read { db in
                        try Int.fetchOne(db, sql: "SELECT count(*) FROM sessions WHERE last_seen_at = ?", arguments: [Timestamp.milliseconds(seen)])
                    } == tokens.count
                }
            )
        }
    }

    @Test("the idle timeout expires unused sessions", arguments: StoreBackend.allCases)
    func idleTimeout(backend: StoreBackend) async throws {
        try await withAuthStore(backend, idleTimeout: .seconds(300)) { store, _ in
            let token = SessionToken.generate()
            let start = Date()
            _ = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(token, now: start), client: client)
            guard case .valid = try await store.validateSession(token.hash, now: start.addingTimeInterval(200)) else {
                Issue.record("session expired too early")
                return
            }
            #expect(try await store.validateSession(token.hash, now: start.addingTimeInterval(200 + 300 + 61)) == .expired)
        }
    }

    @Test("purging deletes only expired sessions and audits each", arguments: StoreBackend.allCases)
    func purge(backend: StoreBackend) async throws {
        try await withAuthStore(backend) { store, _ in
            let keep = SessionToken.generate()
            let drop = SessionToken.generate()
            let user = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(keep), client: client)
            try await store.recordLogin(user: user, session: newSession(drop, now: Date().addingTimeInterval(-120), lifetime: 60), replacing: [], upgradedPasswordHash: nil, client: client)
            #expect(try await store.purgeExpiredSessions(now: Date()) == 1)
            #expect(try await store.listSessions(userId: user.id).map(\.tokenHash) == [keep.hash])
            let expired = try await store.auditEvents(AuditQuery()).filter { $0.kind == .sessionExpired }
            #expect(expired.count == 1)
            #expect(try await store.purgeExpiredSessions(now: Date()) == 0)
        }
    }

    @Test("login replaces the session the client came with (no fixation) and upgrades the hash", arguments: StoreBackend.allCases)
    func loginReplaces(backend: StoreBackend) async throws {
        try await withAuthStore(backend) { store, _ in
            let first = SessionToken.generate()
            let user = try await store.createUser(email: "a@example.com", passwordHash: "old", session: newSession(first), client: client)
            let second = SessionToken.generate()
            try await store.recordLogin(user: user, session: newSession(second), replacing: [first.hash], upgradedPasswordHash: "new", client: client)
            #expect(try await store.validateSession(first.hash, now: Date()) == .unknown)
            #expect(try await store.loginCandidate(email: "a@example.com")?.passwordHash == "new")
            let login = try await store.auditEvents(AuditQuery(email: "a@example.com")).first
            #expect(login?.kind == .login)
            #expect(login?.reason == "password_hash_upgraded")
        }
    }

    @Test("administrative revocation by session, by user and for everyone", arguments: StoreBackend.allCases)
    func revoke(backend: StoreBackend) async throws {
        try await withAuthStore(backend) { store, _ in
            let a1 = SessionToken.generate(), a2 = SessionToken.generate(), b1 = SessionToken.generate()
            let alice = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(a1), client: client)
            try await store.recordLogin(user: alice, session: newSession(a2), replacing: [], upgradedPasswordHash: nil, client: client)
            let bob = try await store.createUser(email: "b@example.com", passwordHash: "h", session: newSession(b1), client: client)
            let a1Id = try #require(try await store.listSessions(userId: alice.id).first { $0.tokenHash == a1.hash }?.id)
            #expect(try await store.revokeSessions(.session(id: a1Id), reason: "admin", client: .commandLine) == 1)
            #expect(try await store.validateSession(a1.hash, now: Date()) == .unknown)
            #expect(try await store.revokeSessions(.user(id: alice.id), reason: "admin", client: .commandLine) == 1)
            #expect(try await store.listSessions(userId: bob.id).count == 1)
            #expect(try await store.revokeSessions(.all, reason: "admin", client: .commandLine) == 1)
            #expect(try await store.listSessions(userId: nil).isEmpty)
            #expect(try await store.auditEvents(AuditQuery()).filter { $0.kind == .sessionRevoked }.count == 3)
        }
    }

    @Test("deleting a user removes its sessions; the audit log keeps its history", arguments: StoreBackend.allCases)
    func deleteUser(backend: StoreBackend) async throws {
        try await withAuthStore(backend) { store, _ in
            let token = SessionToken.generate()
            _ = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(token), client: client)
            #expect(try await store.deleteUser(email: "a@example.com", client: .commandLine))
            #expect(try await store.deleteUser(email: "a@example.com", client: .commandLine) == false)
            #expect(try await store.validateSession(token.hash, now: Date()) == .unknown)
            let kinds = try await store.auditEvents(AuditQuery(email: "a@example.com")).map(\.kind)
            #expect(kinds == [.userDeleted, .sessionRevoked, .signup])
        }
    }

}

@Suite("The outbox's backlog belongs to the background")
struct OutboxBacklogTests {
    @Test("a logout writes its own tombstone and leaves a backlog of other revocations to the maintenance round")
    func logoutAppliesOnlyItsOwn() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try GatehouseDatabase(configuration: DatabaseConfiguration(path: directory.file("db/gatehouse.sqlite")))
        try database.migrate()
        let sqlite = SQLiteAuthStore(database: database)
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        let client = RedisClient(endpoint: try #require(RedisEndpoint(redis.url())), timeout: .seconds(2), connections: 1, logger: Logger(label: "test"))
        // No maintenance round runs: what gets applied is what the logout applies.
        let cache = CachedAuthStore(sqlite: sqlite, redis: client, entryKey: SymmetricKey(size: .bits256), cacheTTL: .seconds(600), sessionLifetime: .seconds(86_400), logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            #expect(await client.awaitConnection(atMost: .seconds(5)))
            let mine = SessionToken.generate()
            let user = try await sqlite.createUser(email: "a@example.com", passwordHash: "h", session: newSession(mine), client: .commandLine)
            // A backlog: 300 sessions revoked while Redis was not asked.
            for _ in 0..<300 {
                try await sqlite.recordLogin(user: user, session: newSession(SessionToken.generate()), replacing: [], upgradedPasswordHash: nil, client: .commandLine)
            }
            _ = try await sqlite.revokeSessions(.all, reason: "admin", client: .commandLine)
            let mine2 = SessionToken.generate()
            try await sqlite.recordLogin(user: user, session: newSession(mine2), replacing: [], upgradedPasswordHash: nil, client: .commandLine)
            let backlog = try await sqlite.pendingInvalidations(limit: 1000).count
            #expect(backlog == 301)
            #expect(try await cache.logout(mine2.hash, client: .commandLine))
            #expect(try await redis.cli("GET", "gatehouse:session:" + mine2.hash.hex) == "revoked")
            // Only its own row was added; none of the backlog was applied by the request.
            #expect(try await sqlite.pendingInvalidations(limit: 1000).count == backlog + 1)
            #expect(try await redis.cli("DBSIZE") == "1")
            group.cancelAll()
        }
    }
}
