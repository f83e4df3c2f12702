import Foundation
import GRDB
import GatehouseCore

/// ``AuthStore`` on the SQLite database: the source of truth.
public final class SQLiteAuthStore: AuthStore {
    /// The database.
    public let database: GatehouseDatabase
    /// Liveness, idle timeout and `last_seen_at` writes: the one session policy.
    public let policy: SessionPolicy
    /// Whether revocations also write cache invalidations (when a Redis cache is in front).
    public let recordsCacheInvalidations: Bool
    /// How long an invalidation is worth keeping: no cached entry outlives a session lifetime.
    public let invalidationRetention: Duration

    /// Creates a store over a migrated database.
    public init(
        database: GatehouseDatabase, policy: SessionPolicy = SessionPolicy(),
        recordsCacheInvalidations: Bool = false, invalidationRetention: Duration = .seconds(86400)
    ) {
        self.database = database
        self.policy = policy
        self.recordsCacheInvalidations = recordsCacheInvalidations
        self.invalidationRetention = invalidationRetention
    }

    public func createUser(email: String, passwordHash: String, session: NewSession?, client: ClientInfo) async throws -> User {
        // Stored with millisecond precision: the value returned equals the value read back.
        let now = Timestamp.date(milliseconds: Timestamp.milliseconds(Date()))
        let user = User(id: UUID().uuidString.lowercased(), email: email, createdAt: now)
        do {
            try await database.write { db in
                try db.execute(
                    sql: "INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [user.id, email, passwordHash, Timestamp.milliseconds(now), Timestamp.milliseconds(now)]
                )
                var sessionId: String?
                if let session {
                    sessionId = try Self.insertSession(db, session, userId: user.id, client: client)
                }
                try Self.audit(db, AuditEvent(at: now, kind: .signup, outcome: .success, userId: user.id, email: email, sessionId: sessionId, ip: client.ip, userAgent: client.userAgent))
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw AuthStoreError.emailTaken
        }
        return user
    }

    public func loginCandidate(email: String) async throws -> LoginCandidate? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email]).map {
                LoginCandidate(user: Self.user(from: $0), passwordHash: $0["password_hash"])
            }
        }
    }

    public func recordLogin(user: User, session: NewSession, replacing previous: [TokenHash], upgradedPasswordHash: String?, client: ClientInfo) async throws {
        try await database.write { db in
            for hash in previous {
                try self.deleteSessions(db, where: "s.token_hash = ?", [hash.hex.databaseValue], kind: .sessionRevoked, reason: "replaced_by_login", client: client)
            }
            if let upgradedPasswordHash {
                try db.execute(
                    sql: "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                    arguments: [upgradedPasswordHash, Timestamp.milliseconds(Date()), user.id]
                )
            }
            let sessionId = try Self.insertSession(db, session, userId: user.id, client: client)
            try Self.audit(db, AuditEvent(at: session.createdAt, kind: .login, outcome: .success, reason: upgradedPasswordHash == nil ? nil : "password_hash_upgraded", userId: user.id, email: user.email, sessionId: sessionId, ip: client.ip, userAgent: client.userAgent))
        }
    }

    public func recordLoginFailure(email: String, userId: String?, reason: String, client: ClientInfo) async throws {
        try await database.write { db in
            try Self.audit(db, AuditEvent(at: Date(), kind: .login, outcome: .failure, reason: reason, userId: userId, email: email, ip: client.ip, userAgent: client.userAgent))
        }
    }

    /// The session with this token hash and its user, as stored.
    static func findSession(_ db: Database, _ tokenHash: TokenHash) throws -> (User, Session)? {
        // Cached per connection: this runs on every validation SQLite answers.
        let statement = try db.cachedStatement(
            sql: """
                SELECT s.id AS session_id, s.token_hash, s.user_id, s.created_at AS session_created_at,
                       s.expires_at, s.last_seen_at, s.ip, s.user_agent, u.*
                FROM sessions s JOIN users u ON u.id = s.user_id
                WHERE s.token_hash = ?
                """
        )
        return try Row.fetchOne(statement, arguments: [tokenHash.hex.databaseValue]).map { row in
            (Self.user(from: row), Self.session(from: row, idColumn: "session_id", createdColumn: "session_created_at"))
        }
    }

    /// The live session for a token hash, read synchronously — for a thread pool, never an
    /// event loop (I4) — or `nil` when there is none, it has expired or its user is disabled.
    /// Writes nothing: an expiry to record or a `last_seen_at` write is
    /// ``validateSession(_:now:)``'s job.
    public func liveSession(_ tokenHash: TokenHash, nowMilliseconds: Int64) throws -> (User, Session)? {
        guard let (user, session) = try database.pool.read({ db in try Self.findSession(db, tokenHash) }),
            case .live = policy.verdict(user, session, nowMilliseconds: nowMilliseconds)
        else { return nil }
        return (user, session)
    }

    public func validateSession(_ tokenHash: TokenHash, now: Date) async throws -> SessionValidation {
        let found = try await database.pool.read { db in try Self.findSession(db, tokenHash) }
        guard let (user, session) = found else { return .unknown }
        return try await settle(user, session, now: now)
    }

    /// Acts on the policy's verdict for a session read from a store (SQLite or a cache entry):
    /// an expiry is deleted and audited, a due `last_seen_at` written.
    public func settle(_ user: User, _ session: Session, now: Date) async throws -> SessionValidation {
        switch policy.verdict(user, session, nowMilliseconds: Timestamp.milliseconds(now)) {
        case .userDisabled:
            return .userDisabled
        case .expired:
            _ = try await database.write { db in
                try self.deleteSessions(db, where: "s.id = ?", [session.id.databaseValue], kind: .sessionExpired, reason: nil, client: ClientInfo(ip: session.ip, userAgent: session.userAgent))
            }
            return .expired
        case .live(let writeDue):
            // Throttled: at most one write per session per interval, whatever the request rate.
            if writeDue { try await touchSession(id: session.id, now: now) }
            return .valid(user, session)
        }
    }

    public func logout(_ tokenHash: TokenHash, client: ClientInfo) async throws -> Bool {
        try await database.write { db in
            try self.deleteSessions(db, where: "s.token_hash = ?", [tokenHash.hex.databaseValue], kind: .logout, reason: nil, client: client) > 0
        }
    }

    public func listUsers() async throws -> [User] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY created_at, email").map(Self.user(from:))
        }
    }

    public func user(email: String) async throws -> User? {
        try await database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE email = ?", arguments: [email]).map(Self.user(from:))
        }
    }

    public func setDisabled(email: String, disabled: Bool, client: ClientInfo) async throws -> Bool {
        try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id FROM users WHERE email = ?", arguments: [email]) else { return false }
            let userId: String = row["id"]
            let now = Timestamp.milliseconds(Date())
            try db.execute(
                sql: "UPDATE users SET disabled_at = ?, updated_at = ? WHERE id = ?",
                arguments: [disabled ? now : nil, now, userId]
            )
            if disabled {
                try self.deleteSessions(db, where: "s.user_id = ?", [userId.databaseValue], kind: .sessionRevoked, reason: "user_disabled", client: client)
                if self.recordsCacheInvalidations { try Self.recordInvalidation(db, tokenHash: nil, userId: userId) }
            }
            try Self.audit(db, AuditEvent(at: Date(), kind: disabled ? .userDisabled : .userEnabled, outcome: .success, userId: userId, email: email, ip: client.ip, userAgent: client.userAgent))
            return true
        }
    }

    public func deleteUser(email: String, client: ClientInfo) async throws -> Bool {
        try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id FROM users WHERE email = ?", arguments: [email]) else { return false }
            let userId: String = row["id"]
            try self.deleteSessions(db, where: "s.user_id = ?", [userId.databaseValue], kind: .sessionRevoked, reason: "user_deleted", client: client)
            if self.recordsCacheInvalidations { try Self.recordInvalidation(db, tokenHash: nil, userId: userId) }
            try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [userId.databaseValue])
            try Self.audit(db, AuditEvent(at: Date(), kind: .userDeleted, outcome: .success, userId: userId, email: email, ip: client.ip, userAgent: client.userAgent))
            return true
        }
    }

    public func listSessions(userId: String?) async throws -> [Session] {
        let now = Timestamp.milliseconds(Date())
        return try await database.pool.read { db in
            let rows: [Row]
            if let userId {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM sessions WHERE user_id = ? AND expires_at > ? ORDER BY created_at DESC", arguments: [userId.databaseValue, now.databaseValue])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM sessions WHERE expires_at > ? ORDER BY created_at DESC", arguments: [now.databaseValue])
            }
            return rows.map { Self.session(from: $0, idColumn: "id", createdColumn: "created_at") }
        }
    }

    public func revokeSessions(_ selector: SessionSelector, reason: String, client: ClientInfo) async throws -> Int {
        try await database.write { db in
            switch selector {
            case .user(let id):
                if self.recordsCacheInvalidations { try Self.recordInvalidation(db, tokenHash: nil, userId: id) }
                return try self.deleteSessions(db, where: "s.user_id = ?", [id.databaseValue], kind: .sessionRevoked, reason: reason, client: client)
            case .session(let id): return try self.deleteSessions(db, where: "s.id = ?", [id.databaseValue], kind: .sessionRevoked, reason: reason, client: client)
            case .all: return try self.deleteSessions(db, where: "1", [], kind: .sessionRevoked, reason: reason, client: client)
            }
        }
    }

    public func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent] {
        try await database.pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let email = query.email {
                conditions.append("email = ?")
                arguments += [email]
            }
            if let since = query.since {
                conditions.append("at >= ?")
                arguments += [Timestamp.milliseconds(since)]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [query.limit]
            return try Row.fetchAll(db, sql: "SELECT * FROM audit_events \(filter) ORDER BY id DESC LIMIT ?", arguments: arguments).map { row in
                AuditEvent(
                    id: row["id"], at: Timestamp.date(milliseconds: row["at"]),
                    kind: AuditEventKind(rawValue: row["event"]) ?? .login,
                    outcome: AuditOutcome(rawValue: row["outcome"]) ?? .failure,
                    reason: row["reason"], userId: row["user_id"], email: row["email"], sessionId: row["session_id"],
                    ip: row["ip"], userAgent: row["user_agent"]
                )
            }
        }
    }

    public func purgeExpiredSessions(now: Date) async throws -> Int {
        let nowMilliseconds = Timestamp.milliseconds(now)
        var condition = "s.expires_at <= ?"
        var arguments: [DatabaseValue] = [nowMilliseconds.databaseValue]
        if let idle = policy.idleCutoff(nowMilliseconds: nowMilliseconds) {
            condition += " OR s.last_seen_at <= ?"
            arguments.append(idle.databaseValue)
        }
        let retention = nowMilliseconds - invalidationRetention.milliseconds
        return try await database.write { [condition, arguments] db in
            try db.execute(sql: "DELETE FROM cache_invalidations WHERE created_at < ?", arguments: [retention.databaseValue])
            return try self.deleteSessions(db, where: condition, arguments, kind: .sessionExpired, reason: nil, client: nil)
        }
    }

    public func ping() async throws {
        try await database.ping()
    }

    /// Writes `last_seen_at` unless it was written less than the policy's interval ago.
    public func touchSession(id: String, now: Date) async throws {
        let nowMilliseconds = Timestamp.milliseconds(now)
        try await database.pool.write { db in
            try db.execute(
                sql: "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at <= ?",
                arguments: [nowMilliseconds.databaseValue, id.databaseValue, self.policy.lastSeenWriteCutoff(nowMilliseconds: nowMilliseconds).databaseValue]
            )
        }
    }

    // MARK: Cache invalidation outbox (I3)

    /// Invalidations committed but not yet applied to the cache, oldest first.
    public func pendingInvalidations(limit: Int) async throws -> [CacheInvalidation] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, token_hash, user_id FROM cache_invalidations ORDER BY id LIMIT ?", arguments: [limit.databaseValue]).map {
                CacheInvalidation(id: $0["id"], tokenHash: ($0["token_hash"] as String?).map(TokenHash.init(hex:)), userId: $0["user_id"])
            }
        }
    }

    /// Forgets invalidations the cache has applied.
    public func clearInvalidations(_ ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM cache_invalidations WHERE id IN (\(ids.map { _ in "?" }.joined(separator: ",")))", arguments: StatementArguments(ids))
        }
    }

    static func recordInvalidation(_ db: Database, tokenHash: String?, userId: String?) throws {
        try db.execute(
            sql: "INSERT INTO cache_invalidations (token_hash, user_id, created_at) VALUES (?, ?, ?)",
            arguments: [tokenHash, userId, Timestamp.milliseconds(Date())]
        )
    }

    // MARK: Rows

    static func insertSession(_ db: Database, _ session: NewSession, userId: String, client: ClientInfo) throws -> String {
        let id = UUID().uuidString.lowercased()
        // I1: only the SHA-256 of the token is stored.
        try db.execute(
            sql: """
                INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                id, session.tokenHash.hex, userId, Timestamp.milliseconds(session.createdAt), Timestamp.milliseconds(session.expiresAt),
                Timestamp.milliseconds(session.createdAt), client.ip, client.userAgent,
            ]
        )
        return id
    }

    /// Deletes the matching sessions and audits each one; `client` nil means "the session's own client".
    /// With the cache in front, each revoked token hash also goes to the invalidation outbox,
    /// in the same transaction (I3).
    @discardableResult
    func deleteSessions(_ db: Database, where condition: String, _ arguments: [DatabaseValue], kind: AuditEventKind, reason: String?, client: ClientInfo?) throws -> Int {
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT s.id, s.token_hash, s.user_id, s.ip, s.user_agent, u.email FROM sessions s JOIN users u ON u.id = s.user_id WHERE \(condition)",
            arguments: StatementArguments(arguments)
        )
        let now = Date()
        for row in rows {
            let id: String = row["id"]
            try db.execute(sql: "DELETE FROM sessions WHERE id = ?", arguments: [id.databaseValue])
            if recordsCacheInvalidations, kind != .sessionExpired {
                try Self.recordInvalidation(db, tokenHash: row["token_hash"], userId: nil)
            }
            try Self.audit(db, AuditEvent(at: now, kind: kind, outcome: .success, reason: reason, userId: row["user_id"], email: row["email"], sessionId: id, ip: client?.ip ?? row["ip"], userAgent: client?.userAgent ?? row["user_agent"]))
        }
        return rows.count
    }

    static func audit(_ db: Database, _ event: AuditEvent) throws {
        try db.execute(
            sql: """
                INSERT INTO audit_events (at, event, outcome, reason, user_id, email, session_id, ip, user_agent)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                Timestamp.milliseconds(event.at), event.kind.rawValue, event.outcome.rawValue, event.reason,
                event.userId, event.email, event.sessionId, event.ip, event.userAgent,
            ]
        )
    }

    static func user(from row: Row) -> User {
        User(
            id: row["id"], email: row["email"], createdAt: Timestamp.date(milliseconds: row["created_at"]),
            emailVerified: row["email_verified"], mfaEnabled: row["mfa_enabled"],
            disabledAt: (row["disabled_at"] as Int64?).map(Timestamp.date(milliseconds:))
        )
    }

    static func session(from row: Row, idColumn: String, createdColumn: String) -> Session {
        Session(
            id: row[idColumn], tokenHash: TokenHash(hex: row["token_hash"]), userId: row["user_id"],
            createdAt: Timestamp.date(milliseconds: row[createdColumn]), expiresAt: Timestamp.date(milliseconds: row["expires_at"]),
            lastSeenAt: Timestamp.date(milliseconds: row["last_seen_at"]), ip: row["ip"], userAgent: row["user_agent"]
        )
    }
}
