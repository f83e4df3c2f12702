import Crypto
import Foundation
import GRDB
import GatehouseCore
import GatehouseTestSupport
import Testing

@testable import GatehouseStore

/// A migrated database file in a temp directory, removed at the end.
func withStore<T>(idleTimeout: Duration = .zero, _ body: (SQLiteAuthStore, GatehouseDatabase) async throws -> T) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let database = try GatehouseDatabase(configuration: DatabaseConfiguration(path: directory.file("db/gatehouse.sqlite")))
    try database.migrate()
    return try await body(SQLiteAuthStore(database: database, policy: SessionPolicy(idleTimeout: idleTimeout)), database)
}

let client = ClientInfo(ip: "192.0.2.1", userAgent: "tests")

func newSession(_ token: SessionToken, now: Date = Date(), lifetime: TimeInterval = 3600) -> NewSession {
    NewSession(tokenHash: token.hash, createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
}

@Suite("SQLite store (SPEC §1)")
struct SQLiteAuthStoreTests {
    @Test("the database file is in WAL mode with a busy timeout, and migrating twice is harmless")
    func walAndMigrations() async throws {
        try await withStore { _, database in
            let mode = try await database.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
            #expect(mode == "wal")
            let timeout = try await database.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA busy_timeout") }
            #expect(timeout == 5000)
            let synchronous = try await database.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
            #expect(synchronous == 2)
            try database.migrate()
            #expect(try database.isMigrated())
            let tables = try await database.pool.read { db in
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%' ORDER BY name")
            }
            #expect(tables == ["account_tokens", "audit_events", "audit_maintenance", "cache_invalidations", "login_failures", "mail_outbox", "recovery_codes", "sessions", "totp_credentials", "users"])
        }
    }

    @Test("the database file, its -wal and its -shm are readable and writable by their owner only (0600)")
    func ownerOnlyFiles() async throws {
        try await withStore { store, database in
            // A write: SQLite has created the -wal and -shm files by now, after the database file.
            _ = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(.generate()), client: client)
            for suffix in ["", "-wal", "-shm"] {
                let attributes = try FileManager.default.attributesOfItem(atPath: database.path + suffix)
                let mode = try #require(attributes[.posixPermissions] as? Int)
                #expect(String(mode, radix: 8) == "600", "gatehouse.sqlite\(suffix)")
            }
        }
    }

    @Test("stored password hashes are counted by their Argon2id parameters, other kinds left out")
    func passwordHashParameters() async throws {
        try await withStore { store, _ in
            let hashes = [
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0b3RoZXJzYQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                "$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                "$2b$12$abcdefghijklmnopqrstuuQ9Ua6oH6eBk3MI7C2VhmgeUvgHZJ2m",
            ]
            for (index, hash) in hashes.enumerated() {
                _ = try await store.createUser(email: "u\(index)@example.com", passwordHash: hash, session: nil, client: client)
            }
            #expect(try await store.passwordHashParameters() == [
                Argon2Parameters(memoryKiB: 19456, iterations: 2, parallelism: 1): 2,
                Argon2Parameters(memoryKiB: 65536, iterations: 3, parallelism: 4): 1,
            ])
        }
    }

    @Test("sessions store only the SHA-256 of the token (I1)")
    func tokenHashOnly() async throws {
        try await withStore { store, database in
            let token = SessionToken.generate()
            _ = try await store.createUser(email: "a@example.com", passwordHash: "$argon2id$x", session: newSession(token), client: client)
            let stored = try await database.pool.read { db in try String.fetchAll(db, sql: "SELECT token_hash FROM sessions") }
            #expect(stored == [token.hash.hex])
            // Nothing in the file (nor its WAL) holds the token itself.
            try await database.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
            for suffix in ["", "-wal"] {
                let bytes = (try? Data(contentsOf: URL(fileURLWithPath: database.path + suffix))) ?? Data()
                #expect(bytes.range(of: Data(token.cookieValue.utf8)) == nil)
            }
        }
    }

    @Test("signup with a taken email fails and changes nothing")
    func emailTaken() async throws {
        try await withStore { store, database in
            _ = try await store.createUser(email: "a@example.com", passwordHash: "h", session: nil, client: client)
            await #expect(throws: AuthStoreError.emailTaken) {
                _ = try await store.createUser(email: "a@example.com", passwordHash: "h2", session: newSession(.generate()), client: client)
            }
            let counts = try await database.pool.read { db in
                [try Int.fetchOne(db, sql: "SELECT count(*) FROM users"), try Int.fetchOne(db, sql: "SELECT count(*) FROM sessions"),
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_events")]
            }
            #expect(counts == [1, 0, 1])
        }
    }

    @Test("the audit log is append-only")
    func auditAppendOnly() async throws {
        try await withStore { store, database in
            try await store.recordLoginFailure(email: "x@example.com", userId: nil, reason: "unknown_email", client: client)
            await #expect(throws: DatabaseError.self) {
                try await database.pool.write { db in try db.execute(sql: "UPDATE audit_events SET outcome = 'success'") }
            }
            await #expect(throws: DatabaseError.self) {
                try await database.pool.write { db in try db.execute(sql: "DELETE FROM audit_events") }
            }
            let events = try await store.auditEvents(AuditQuery())
            #expect(events.count == 1)
            #expect(events.first?.reason == "unknown_email")
            #expect(events.first?.ip == "192.0.2.1")
        }
    }

    @Test("a disabled user's sessions stop validating even if a row survives")
    func disabledUserRow() async throws {
        try await withStore { store, database in
            let token = SessionToken.generate()
            let user = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(token), client: client)
            try await database.pool.write { db in try db.execute(sql: "UPDATE users SET disabled_at = 1 WHERE id = ?", arguments: [user.id]) }
            #expect(try await store.validateSession(token.hash, now: Date()) == .userDisabled)
        }
    }

    @Test("two pools on one file (two processes' view) see each other's writes at once")
    func sharedFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configuration = DatabaseConfiguration(path: directory.file("shared.sqlite"))
        let first = try GatehouseDatabase(configuration: configuration)
        let second = try GatehouseDatabase(configuration: configuration)
        try first.migrate()
        try second.migrate()
        let storeA = SQLiteAuthStore(database: first), storeB = SQLiteAuthStore(database: second)
        let token = SessionToken.generate()
        _ = try await storeA.createUser(email: "a@example.com", passwordHash: "h", session: newSession(token), client: client)
        guard case .valid = try await storeB.validateSession(token.hash, now: Date()) else {
            Issue.record("session written by one pool did not validate on the other")
            return
        }
        #expect(try await storeB.logout(token.hash, client: client))
        #expect(try await storeA.validateSession(token.hash, now: Date()) == .unknown)
    }

    @Test("every revocation writes its invalidation in the same transaction, cache in front or not (I3); applied ones are kept for replays, then purged")
    func invalidationOutbox() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try GatehouseDatabase(configuration: DatabaseConfiguration(path: directory.file("outbox.sqlite")))
        try database.migrate()
        let store = SQLiteAuthStore(database: database)
        let a = SessionToken.generate(), b = SessionToken.generate(), c = SessionToken.generate()
        let user = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(a), client: client)
        try await store.recordLogin(user: user, session: newSession(b), replacing: [a.hash], upgradedPasswordHash: nil, client: client)
        try await store.recordLogin(user: user, session: newSession(c), replacing: [], upgradedPasswordHash: nil, client: client)
        #expect(try await store.logout(c.hash, client: client))
        _ = try await store.setDisabled(email: "a@example.com", disabled: true, client: client)
        let pending = try await store.pendingInvalidations(limit: 100)
        #expect(pending.map(\.tokenHash) == [a.hash, c.hash, b.hash, nil])
        #expect(pending.last?.userId == user.id)
        let applied = Date()
        try await store.markInvalidationsApplied(pending.map(\.id), now: applied)
        #expect(try await store.pendingInvalidations(limit: 100).isEmpty)
        // Applied ones are kept for replays: everything since a moment is there, in order.
        let recent = try await store.recentInvalidations(since: Timestamp.milliseconds(applied) - 60_000, after: 0, limit: 100)
        #expect(recent == pending)
        #expect(try await store.recentInvalidations(since: Timestamp.milliseconds(applied) - 60_000, after: pending[1].id, limit: 100) == Array(pending[2...]))
        // And purged once older than the retention.
        _ = try await store.purgeExpiredSessions(now: applied.addingTimeInterval(86_400 + 1))
        #expect(try await store.recentInvalidations(since: 0, after: 0, limit: 100).isEmpty)

        // Recorded by any store, with or without a cache in front (another process may cache).
        let plain = SQLiteAuthStore(database: database)
        let d = SessionToken.generate()
        _ = try await plain.createUser(email: "b@example.com", passwordHash: "h", session: newSession(d), client: client)
        #expect(try await plain.logout(d.hash, client: client))
        #expect(try await store.pendingInvalidations(limit: 100).map(\.tokenHash) == [d.hash])
    }
}

@Suite("The Redis entry key and authenticated entries")
struct CacheEntryKeyTests {
    @Test("a missing key file is created once, 0600, and every process reads the same key")
    func created() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("gatehouse.sqlite.redis-key")
        let keys = try await withThrowingTaskGroup(of: Data.self) { group in
            for _ in 0..<8 { group.addTask { try CacheEntryKey.load(path: path).withUnsafeBytes { Data($0) } } }
            return try await group.reduce(into: [Data]()) { $0.append($1) }
        }
        #expect(Set(keys).count == 1)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["gatehouse.sqlite.redis-key"])
    }

    @Test("a key file's surrounding whitespace is ignored; one shorter than 32 bytes is refused")
    func given() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("key")
        try (String(repeating: "k", count: 40) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CacheEntryKey.load(path: path).withUnsafeBytes { Data($0) } == Data(String(repeating: "k", count: 40).utf8))
        try "too short\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: StoreError.self) { try CacheEntryKey.load(path: path) }
    }

    @Test("an entry decodes only with its key, under its own token hash, untampered and without control characters")
    func entries() throws {
        let key = SymmetricKey(size: .bits256)
        let codec = SessionCacheEntry(key: key)
        let token = SessionToken.generate()
        let now = Timestamp.date(milliseconds: Timestamp.milliseconds(Date()))
        let user = User(id: "u1", email: "a@example.com", createdAt: now)
        let session = Session(id: "s1", tokenHash: token.hash, userId: "u1", createdAt: now, expiresAt: now.addingTimeInterval(60), lastSeenAt: now, ip: "192.0.2.1", userAgent: "ua")
        let entry = codec.encode(user, session)
        #expect(codec.decode(entry, tokenHash: token.hash).map { $0.0 == user && $0.1 == session } == true)
        #expect(SessionCacheEntry(key: SymmetricKey(size: .bits256)).decode(entry, tokenHash: token.hash) == nil)
        #expect(codec.decode(entry, tokenHash: SessionToken.generate().hash) == nil)
        #expect(codec.decode(entry.replacingOccurrences(of: "a@example.com", with: "b@example.com"), tokenHash: token.hash) == nil)
        // A header injection cannot be written (the encoder drops control characters) nor read.
        var evil = user
        evil.email = "a@example.com\r\nX-Admin: 1"
        let cleaned = try #require(codec.decode(codec.encode(evil, session), tokenHash: token.hash))
        #expect(cleaned.0.email == "a@example.comX-Admin: 1")
    }
}
