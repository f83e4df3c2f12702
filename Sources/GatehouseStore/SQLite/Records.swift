import Foundation
import GRDB
import GatehouseCore

// The tables of the SQLite store as GRDB records: each column is named once (in `Columns`),
// each row is mapped to and from the domain values once. Times are stored as integer
// milliseconds since 1970 (``Timestamp``).

/// A row of `users`.
struct UserRecord: FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "users"
    static let sessions = hasMany(SessionRecord.self)

    enum Columns {
        static let id = Column("id")
        static let email = Column("email")
        static let passwordHash = Column("password_hash")
        static let createdAt = Column("created_at")
        static let updatedAt = Column("updated_at")
        static let emailVerified = Column("email_verified")
        static let mfaEnabled = Column("mfa_enabled")
        static let disabledAt = Column("disabled_at")
        static let all = [id, email, passwordHash, createdAt, updatedAt, emailVerified, mfaEnabled, disabledAt]
    }

    static var databaseSelection: [any SQLSelectable] { Columns.all }

    var id: String
    var email: String
    var passwordHash: String
    var createdAt: Int64
    var updatedAt: Int64
    var emailVerified: Bool
    var mfaEnabled: Bool
    var disabledAt: Int64?

    /// A new account.
    init(_ user: User, passwordHash: String) {
        let created = Timestamp.milliseconds(user.createdAt)
        self.id = user.id
        self.email = user.email
        self.passwordHash = passwordHash
        self.createdAt = created
        self.updatedAt = created
        self.emailVerified = user.emailVerified
        self.mfaEnabled = user.mfaEnabled
        self.disabledAt = user.disabledAt.map(Timestamp.milliseconds)
    }

    init(row: Row) throws {
        id = row[Columns.id]
        email = row[Columns.email]
        passwordHash = row[Columns.passwordHash]
        createdAt = row[Columns.createdAt]
        updatedAt = row[Columns.updatedAt]
        emailVerified = row[Columns.emailVerified]
        mfaEnabled = row[Columns.mfaEnabled]
        disabledAt = row[Columns.disabledAt]
    }

    func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.email] = email
        container[Columns.passwordHash] = passwordHash
        container[Columns.createdAt] = createdAt
        container[Columns.updatedAt] = updatedAt
        container[Columns.emailVerified] = emailVerified
        container[Columns.mfaEnabled] = mfaEnabled
        container[Columns.disabledAt] = disabledAt
    }

    /// The domain value (without the password hash).
    var user: User {
        User(
            id: id, email: email, createdAt: Timestamp.date(milliseconds: createdAt),
            emailVerified: emailVerified, mfaEnabled: mfaEnabled, disabledAt: disabledAt.map(Timestamp.date(milliseconds:))
        )
    }

    /// The account with this (normalised) email.
    static func withEmail(_ email: String) -> QueryInterfaceRequest<UserRecord> {
        filter(Columns.email == email)
    }
}

/// A row of `sessions`: never the token, only its SHA-256 (I1).
struct SessionRecord: FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "sessions"
    /// The scope the owner's columns are read from.
    static let userKey = "user"
    static let user = belongsTo(UserRecord.self, key: userKey)

    enum Columns {
        static let id = Column("id")
        static let tokenHash = Column("token_hash")
        static let userId = Column("user_id")
        static let createdAt = Column("created_at")
        static let expiresAt = Column("expires_at")
        static let lastSeenAt = Column("last_seen_at")
        static let ip = Column("ip")
        static let userAgent = Column("user_agent")
        static let all = [id, tokenHash, userId, createdAt, expiresAt, lastSeenAt, ip, userAgent]
    }

    static var databaseSelection: [any SQLSelectable] { Columns.all }

    var id: String
    var tokenHash: String
    var userId: String
    var createdAt: Int64
    var expiresAt: Int64
    var lastSeenAt: Int64
    var ip: String
    var userAgent: String

    /// A session just created at login or signup: last seen when created.
    init(_ session: NewSession, id: String, userId: String, client: ClientInfo) {
        self.id = id
        self.tokenHash = session.tokenHash.hex
        self.userId = userId
        self.createdAt = Timestamp.milliseconds(session.createdAt)
        self.expiresAt = Timestamp.milliseconds(session.expiresAt)
        self.lastSeenAt = createdAt
        self.ip = client.ip
        self.userAgent = client.userAgent
    }

    init(row: Row) throws {
        id = row[Columns.id]
        tokenHash = row[Columns.tokenHash]
        userId = row[Columns.userId]
        createdAt = row[Columns.createdAt]
        expiresAt = row[Columns.expiresAt]
        lastSeenAt = row[Columns.lastSeenAt]
        ip = row[Columns.ip]
        userAgent = row[Columns.userAgent]
    }

    func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.tokenHash] = tokenHash
        container[Columns.userId] = userId
        container[Columns.createdAt] = createdAt
        container[Columns.expiresAt] = expiresAt
        container[Columns.lastSeenAt] = lastSeenAt
        container[Columns.ip] = ip
        container[Columns.userAgent] = userAgent
    }

    /// The domain value.
    var session: Session {
        Session(
            id: id, tokenHash: TokenHash(hex: tokenHash), userId: userId,
            createdAt: Timestamp.date(milliseconds: createdAt), expiresAt: Timestamp.date(milliseconds: expiresAt),
            lastSeenAt: Timestamp.date(milliseconds: lastSeenAt), ip: ip, userAgent: userAgent
        )
    }
}

/// A session with its owner, as one join.
struct SessionWithUser: FetchableRecord, Sendable {
    var session: SessionRecord
    var user: UserRecord

    init(row: Row) throws {
        session = try SessionRecord(row: row)
        user = row[SessionRecord.userKey]
    }

    /// The sessions `sessions` selects, each with its user.
    static func all(_ sessions: QueryInterfaceRequest<SessionRecord>) -> QueryInterfaceRequest<SessionWithUser> {
        sessions.including(required: SessionRecord.user).asRequest(of: SessionWithUser.self)
    }

    /// The session with this token hash and its user: the read behind every validation
    /// SQLite answers, so its statement is prepared once per connection (the query interface
    /// prepares on every call). The SQL names the records' own columns; the adapter splits the
    /// row the way ``all(_:)`` scopes it.
    static func fetchOne(_ db: Database, tokenHash: TokenHash) throws -> SessionWithUser? {
        let statement = try db.cachedStatement(sql: byTokenHashSQL)
        return try fetchOne(statement, arguments: [tokenHash.hex], adapter: byTokenHashAdapter)
    }

    private static let byTokenHashSQL: String = {
        let session = SessionRecord.Columns.all.map { "s.\($0.name.quotedDatabaseIdentifier)" }
        let user = UserRecord.Columns.all.map { "u.\($0.name.quotedDatabaseIdentifier)" }
        return "SELECT \((session + user).joined(separator: ", ")) FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?"
    }()

    private static let byTokenHashAdapter: ScopeAdapter = {
        let parts = splittingRowAdapters(columnCounts: [SessionRecord.Columns.all.count, UserRecord.Columns.all.count])
        return ScopeAdapter(base: parts[0], scopes: [SessionRecord.userKey: parts[1]])
    }()
}

/// A row of `audit_events`: append-only (triggers refuse updates and deletes).
struct AuditEventRecord: FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "audit_events"

    enum Columns {
        static let id = Column("id")
        static let at = Column("at")
        static let event = Column("event")
        static let outcome = Column("outcome")
        static let reason = Column("reason")
        static let userId = Column("user_id")
        static let email = Column("email")
        static let sessionId = Column("session_id")
        static let ip = Column("ip")
        static let userAgent = Column("user_agent")
    }

    var event: AuditEvent

    init(_ event: AuditEvent) {
        self.event = event
    }

    init(row: Row) throws {
        event = AuditEvent(
            id: row[Columns.id], at: Timestamp.date(milliseconds: row[Columns.at]),
            kind: AuditEventKind(rawValue: row[Columns.event]) ?? .login,
            outcome: AuditOutcome(rawValue: row[Columns.outcome]) ?? .failure,
            reason: row[Columns.reason], userId: row[Columns.userId], email: row[Columns.email],
            sessionId: row[Columns.sessionId], ip: row[Columns.ip], userAgent: row[Columns.userAgent]
        )
    }

    /// The row id is SQLite's (`AUTOINCREMENT`), never the value's.
    func encode(to container: inout PersistenceContainer) throws {
        container[Columns.at] = Timestamp.milliseconds(event.at)
        container[Columns.event] = event.kind.rawValue
        container[Columns.outcome] = event.outcome.rawValue
        container[Columns.reason] = event.reason
        container[Columns.userId] = event.userId
        container[Columns.email] = event.email
        container[Columns.sessionId] = event.sessionId
        container[Columns.ip] = event.ip
        container[Columns.userAgent] = event.userAgent
    }
}

/// A row of the cache-invalidation outbox (I3): a revocation for the caches, pending until
/// one applies it, then kept a while for replays.
struct CacheInvalidationRecord: FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "cache_invalidations"

    enum Columns {
        static let id = Column("id")
        static let tokenHash = Column("token_hash")
        static let userId = Column("user_id")
        static let createdAt = Column("created_at")
        static let appliedAt = Column("applied_at")
    }

    var id: Int64?
    var tokenHash: String?
    var userId: String?
    var createdAt: Int64
    /// When a cache first applied it; `nil` while pending.
    var appliedAt: Int64?

    init(tokenHash: String?, userId: String?, createdAt: Int64) {
        self.tokenHash = tokenHash
        self.userId = userId
        self.createdAt = createdAt
    }

    init(row: Row) throws {
        id = row[Columns.id]
        tokenHash = row[Columns.tokenHash]
        userId = row[Columns.userId]
        createdAt = row[Columns.createdAt]
        appliedAt = row[Columns.appliedAt]
    }

    func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.tokenHash] = tokenHash
        container[Columns.userId] = userId
        container[Columns.createdAt] = createdAt
        container[Columns.appliedAt] = appliedAt
    }

    /// The value the cache applies.
    var invalidation: CacheInvalidation {
        CacheInvalidation(id: id ?? 0, tokenHash: tokenHash.map(TokenHash.init(hex:)), userId: userId)
    }
}

/// A row of `login_failures`: one lockout bucket's count (``LoginBucket``).
struct LoginFailureRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "login_failures"

    enum Columns {
        static let email = Column(CodingKeys.email)
        static let forgetAt = Column(CodingKeys.forgetAt)
    }

    enum CodingKeys: String, CodingKey {
        case email, address, failures
        case windowStartedAt = "window_started_at"
        case lockedUntil = "locked_until"
        case forgetAt = "forget_at"
    }

    var email: String
    var address: String
    var failures: Int
    var windowStartedAt: Int64
    var lockedUntil: Int64?
    /// When the row says nothing any more: the window and any lock are over.
    var forgetAt: Int64

    /// The primary key of a bucket.
    static func key(_ bucket: LoginBucket) -> [String: any DatabaseValueConvertible] {
        ["email": bucket.email, "address": bucket.knownAddress ?? ""]
    }

    /// Until when the bucket is locked at `now`, or `nil`.
    func lockedUntil(now: Date) -> Date? {
        guard let lockedUntil, lockedUntil > Timestamp.milliseconds(now) else { return nil }
        return Timestamp.date(milliseconds: lockedUntil)
    }

    /// Counts one failure in its bucket; returns until when the bucket is locked when this
    /// failure locked it. A window opens with the first failure after the previous window (or
    /// lock) ended; a lock starts when its failures reach `max_failures` and is not extended
    /// by failures during it.
    static func count(_ db: Database, _ counting: LoginFailureCount, now: Date) throws -> Date? {
        let nowMilliseconds = Timestamp.milliseconds(now)
        let lockout = counting.lockout
        let stored = try fetchOne(db, key: key(counting.bucket))
        if let stored, stored.lockedUntil(now: now) != nil { return nil }
        // A count goes on within its window; after the window, or after a lock, it starts afresh.
        var row =
            stored.flatMap { $0.lockedUntil == nil && $0.windowStartedAt + lockout.window.milliseconds > nowMilliseconds ? $0 : nil }
            ?? LoginFailureRecord(
                email: counting.bucket.email, address: counting.bucket.knownAddress ?? "", failures: 0, windowStartedAt: nowMilliseconds,
                lockedUntil: nil, forgetAt: nowMilliseconds + lockout.window.milliseconds
            )
        row.failures += 1
        var locked: Date?
        if row.failures >= lockout.maxFailures {
            let until = nowMilliseconds + lockout.ban.milliseconds
            (row.lockedUntil, row.forgetAt) = (until, until)
            locked = Timestamp.date(milliseconds: until)
        }
        try row.save(db)
        return locked
    }
}
