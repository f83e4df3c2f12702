import Foundation
import GRDB
import GatehouseCore

/// ``AuthStore`` on the SQLite database: the source of truth.
public final class SQLiteAuthStore: AuthStore {
    /// The database.
    public let database: GatehouseDatabase
    /// Liveness, idle timeout and `last_seen_at` writes: the one session policy.
    public let policy: SessionPolicy
    /// How long an invalidation is worth keeping: no cached entry outlives a session lifetime.
    public let invalidationRetention: Duration
    /// Due `last_seen_at` writes not yet committed.
    let lastSeenBatch = LastSeenBatch()

    /// Creates a store over a migrated database.
    public init(
        database: GatehouseDatabase, policy: SessionPolicy = SessionPolicy(),
        invalidationRetention: Duration = .seconds(86400)
    ) {
        self.database = database
        self.policy = policy
        self.invalidationRetention = invalidationRetention
    }

    public func createUser(email: String, passwordHash: String, session: NewSession?, client: ClientInfo) async throws -> User {
        // Stored with millisecond precision: the value returned equals the value read back.
        let now = Timestamp.date(milliseconds: Timestamp.milliseconds(Date()))
        let user = User(id: UUID().uuidString.lowercased(), email: email, createdAt: now)
        do {
            try await database.write { db in
                try UserRecord(user, passwordHash: passwordHash).insert(db)
                let sessionId = try session.map { try Self.insertSession(db, $0, userId: user.id, client: client) }
                try Self.audit(db, AuditEvent(at: now, kind: .signup, outcome: .success, userId: user.id, email: email, sessionId: sessionId, ip: client.ip, userAgent: client.userAgent))
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw AuthStoreError.emailTaken
        }
        return user
    }

    public func loginCandidate(email: String) async throws -> LoginCandidate? {
        try await database.pool.read { db in
            try UserRecord.withEmail(email).fetchOne(db).map { LoginCandidate(user: $0.user, passwordHash: $0.passwordHash) }
        }
    }

    public func recordLogin(user: User, session: NewSession, replacing previous: [TokenHash], upgradedPasswordHash: String?, client: ClientInfo, clearing bucket: LoginBucket?) async throws {
        try await database.write { db in
            if let bucket { try LoginFailureRecord.filter(key: LoginFailureRecord.key(bucket)).deleteAll(db) }
            if !previous.isEmpty {
                try self.deleteSessions(db, SessionRecord.filter(previous.map(\.hex).contains(SessionRecord.Columns.tokenHash)), kind: .sessionRevoked, reason: "replaced_by_login", client: client)
            }
            if let upgradedPasswordHash {
                try UserRecord.filter(key: user.id).updateAll(
                    db, UserRecord.Columns.passwordHash.set(to: upgradedPasswordHash), UserRecord.Columns.updatedAt.set(to: Timestamp.milliseconds(Date()))
                )
            }
            let sessionId = try Self.insertSession(db, session, userId: user.id, client: client)
            try Self.audit(db, AuditEvent(at: session.createdAt, kind: .login, outcome: .success, reason: upgradedPasswordHash == nil ? nil : "password_hash_upgraded", userId: user.id, email: user.email, sessionId: sessionId, ip: client.ip, userAgent: client.userAgent))
        }
    }

    public func recordLoginFailure(email: String?, userId: String?, reason: String, client: ClientInfo, counting: LoginFailureCount?) async throws -> Date? {
        let now = Timestamp.date(milliseconds: Timestamp.milliseconds(Date()))
        return try await database.write { db in
            try Self.audit(db, AuditEvent(at: now, kind: .login, outcome: .failure, reason: reason, userId: userId, email: email, ip: client.ip, userAgent: client.userAgent))
            guard let counting, counting.lockout.maxFailures > 0 else { return nil }
            let lockedUntil = try LoginFailureRecord.count(db, counting, now: now)
            if let lockedUntil {
                let scope = counting.bucket.knownAddress == nil ? "elsewhere" : "known_address"
                try Self.audit(db, AuditEvent(at: now, kind: .loginLocked, outcome: .success, reason: scope, userId: userId, email: email, ip: client.ip, userAgent: client.userAgent))
            }
            return lockedUntil
        }
    }

    public func loginLock(_ bucket: LoginBucket, now: Date) async throws -> Date? {
        try await database.pool.read { db in
            try LoginFailureRecord.fetchOne(db, key: LoginFailureRecord.key(bucket))?.lockedUntil(now: now)
        }
    }

    public func hasLoggedIn(userId: String, from address: String, since: Date) async throws -> Bool {
        try await database.pool.read { db in
            try AuditEventRecord.filter(
                AuditEventRecord.Columns.userId == userId && AuditEventRecord.Columns.ip == address
                    && AuditEventRecord.Columns.at >= Timestamp.milliseconds(since)
                    && [AuditEventKind.login.rawValue, AuditEventKind.signup.rawValue].contains(AuditEventRecord.Columns.event)
                    && AuditEventRecord.Columns.outcome == AuditOutcome.success.rawValue
            ).isEmpty(db) == false
        }
    }

    public func unlockLogins(email: String, client: ClientInfo) async throws -> Int {
        let now = Date()
        return try await database.write { db in
            let rows = try LoginFailureRecord.filter(LoginFailureRecord.Columns.email == email).fetchAll(db)
            try LoginFailureRecord.filter(LoginFailureRecord.Columns.email == email).deleteAll(db)
            let locked = rows.filter { $0.lockedUntil(now: now) != nil }.count
            let userId = try UserRecord.withEmail(email).fetchOne(db)?.id
            try Self.audit(db, AuditEvent(at: now, kind: .loginUnlocked, outcome: .success, reason: "admin", userId: userId, email: email, ip: client.ip, userAgent: client.userAgent))
            return locked
        }
    }

    public func audit(_ event: AuditEvent) async throws {
        try await database.write { db in try Self.audit(db, event) }
    }

    public func passwordHashParameters() async throws -> [Argon2Parameters: Int] {
        let hash = UserRecord.Columns.passwordHash
        // Hashes grouped by their PHC string up to the salt, `$argon2id$v=19$m=…,t=…,p=…`, whose
        // parameters begin at the 16th character; one hash of each group is read for them. One
        // pass over the table, for a service that asks every few minutes, never per request.
        let settings = SQL("substr(\(hash), 1, 14 + instr(substr(\(hash), 16), '$'))").sqlExpression
        let groups = try await database.pool.read { db in
            try UserRecord.select([hash, count(hash)], as: Row.self).group(settings).fetchAll(db)
        }
        var counts: [Argon2Parameters: Int] = [:]
        for group in groups {
            guard let parameters = Argon2Hasher.parameters(of: group[0]) else { continue }
            counts[parameters, default: 0] += group[1]
        }
        return counts
    }

    /// The session with this token hash and its user, as stored.
    static func findSession(_ db: Database, _ tokenHash: TokenHash) throws -> (User, Session)? {
        try SessionWithUser.fetchOne(db, tokenHash: tokenHash).map { ($0.user.user, $0.session.session) }
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
                try self.deleteSessions(db, SessionRecord.filter(key: session.id), kind: .sessionExpired, reason: nil, client: ClientInfo(ip: session.ip, userAgent: session.userAgent))
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
            try self.deleteSessions(db, SessionRecord.filter(SessionRecord.Columns.tokenHash == tokenHash.hex), kind: .logout, reason: nil, client: client) > 0
        }
    }

    public func listUsers() async throws -> [User] {
        try await database.pool.read { db in
            try UserRecord.order(UserRecord.Columns.createdAt, UserRecord.Columns.email).fetchAll(db).map(\.user)
        }
    }

    public func user(email: String) async throws -> User? {
        try await database.pool.read { db in try UserRecord.withEmail(email).fetchOne(db)?.user }
    }

    public func setDisabled(email: String, disabled: Bool, client: ClientInfo) async throws -> Bool {
        try await database.write { db in
            guard let user = try UserRecord.withEmail(email).fetchOne(db) else { return false }
            let now = Timestamp.milliseconds(Date())
            try UserRecord.filter(key: user.id).updateAll(db, UserRecord.Columns.disabledAt.set(to: disabled ? now : nil), UserRecord.Columns.updatedAt.set(to: now))
            if disabled {
                try self.deleteSessions(db, SessionRecord.filter(SessionRecord.Columns.userId == user.id), kind: .sessionRevoked, reason: "user_disabled", client: client)
                try Self.recordInvalidation(db, tokenHash: nil, userId: user.id)
            }
            try Self.audit(db, AuditEvent(at: Date(), kind: disabled ? .userDisabled : .userEnabled, outcome: .success, userId: user.id, email: email, ip: client.ip, userAgent: client.userAgent))
            return true
        }
    }

    public func deleteUser(email: String, client: ClientInfo) async throws -> Bool {
        try await database.write { db in
            guard let user = try UserRecord.withEmail(email).fetchOne(db) else { return false }
            try self.deleteSessions(db, SessionRecord.filter(SessionRecord.Columns.userId == user.id), kind: .sessionRevoked, reason: "user_deleted", client: client)
            try Self.recordInvalidation(db, tokenHash: nil, userId: user.id)
            try user.delete(db)
            try Self.audit(db, AuditEvent(at: Date(), kind: .userDeleted, outcome: .success, userId: user.id, email: email, ip: client.ip, userAgent: client.userAgent))
            return true
        }
    }

    public func listSessions(userId: String?) async throws -> [Session] {
        let now = Timestamp.milliseconds(Date())
        return try await database.pool.read { db in
            var request = SessionRecord.filter(SessionRecord.Columns.expiresAt > now)
            if let userId { request = request.filter(SessionRecord.Columns.userId == userId) }
            return try request.order(SessionRecord.Columns.createdAt.desc).fetchAll(db).map(\.session)
        }
    }

    public func revokeSessions(_ selector: SessionSelector, reason: String, client: ClientInfo) async throws -> Int {
        try await database.write { db in
            switch selector {
            case .user(let id):
                try Self.recordInvalidation(db, tokenHash: nil, userId: id)
                return try self.deleteSessions(db, SessionRecord.filter(SessionRecord.Columns.userId == id), kind: .sessionRevoked, reason: reason, client: client)
            case .session(let id):
                return try self.deleteSessions(db, SessionRecord.filter(key: id), kind: .sessionRevoked, reason: reason, client: client)
            case .all:
                return try self.deleteSessions(db, SessionRecord.all(), kind: .sessionRevoked, reason: reason, client: client)
            }
        }
    }

    public func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent] {
        try await database.pool.read { db in
            var request = AuditEventRecord.all()
            if let email = query.email { request = request.filter(AuditEventRecord.Columns.email == email) }
            if let since = query.since { request = request.filter(AuditEventRecord.Columns.at >= Timestamp.milliseconds(since)) }
            return try request.order(AuditEventRecord.Columns.id.desc).limit(query.limit).fetchAll(db).map(\.event)
        }
    }

    public func purgeExpiredSessions(now: Date) async throws -> Int {
        let nowMilliseconds = Timestamp.milliseconds(now)
        var ended = SessionRecord.Columns.expiresAt <= nowMilliseconds
        if let idle = policy.idleCutoff(nowMilliseconds: nowMilliseconds) {
            ended = ended || SessionRecord.Columns.lastSeenAt <= idle
        }
        let retention = nowMilliseconds - invalidationRetention.milliseconds
        return try await database.write { [ended] db in
            try CacheInvalidationRecord.filter(CacheInvalidationRecord.Columns.createdAt < retention).deleteAll(db)
            try LoginFailureRecord.filter(LoginFailureRecord.Columns.forgetAt <= nowMilliseconds).deleteAll(db)
            try Self.purgeAccountRows(db, nowMilliseconds: nowMilliseconds)
            return try self.deleteSessions(db, SessionRecord.filter(ended), kind: .sessionExpired, reason: nil, client: nil)
        }
    }

    public func ping() async throws {
        try await database.ping()
    }

    /// Records that the session was seen at `now`. The write is committed with the others due
    /// in the next ``lastSeenCommitDelay`` (see ``LastSeenBatch``); the caller does not wait.
    public func touchSession(id: String, now: Date) async throws {
        if lastSeenBatch.add(sessionId: id, at: Timestamp.milliseconds(now)) { scheduleLastSeenCommit() }
    }

    /// Commits every pending `last_seen_at` write in one transaction, each unless the row was
    /// written less than the policy's interval before it. A failed commit keeps the writes for
    /// the next one.
    public func commitLastSeen() async throws {
        let pending = lastSeenBatch.take()
        guard !pending.isEmpty else { return }
        do {
            try await database.pool.write { db in
                for (id, seen) in pending {
                    _ = try SessionRecord.filter(key: id).filter(SessionRecord.Columns.lastSeenAt <= self.policy.lastSeenWriteCutoff(nowMilliseconds: seen))
                        .updateAll(db, SessionRecord.Columns.lastSeenAt.set(to: seen))
                }
            }
        } catch {
            var reschedule = false
            for (id, seen) in pending where lastSeenBatch.add(sessionId: id, at: seen) { reschedule = true }
            if reschedule { scheduleLastSeenCommit() }
            throw error
        }
    }

    /// How long a due `last_seen_at` write waits for others to share its transaction: 200 ms,
    /// or a quarter of the policy's write interval when that is shorter, so the idle timeout
    /// still holds as configured.
    public var lastSeenCommitDelay: Duration { min(.milliseconds(200), policy.lastSeenInterval / 4) }

    private func scheduleLastSeenCommit() {
        Task {
            try? await Task.sleep(for: self.lastSeenCommitDelay)
            try? await self.commitLastSeen()
        }
    }

    // MARK: Cache invalidation outbox (I3)

    /// Invalidations committed but not yet applied to the cache, oldest first.
    public func pendingInvalidations(limit: Int) async throws -> [CacheInvalidation] {
        try await database.pool.read { db in
            try CacheInvalidationRecord.filter(CacheInvalidationRecord.Columns.appliedAt == nil)
                .order(CacheInvalidationRecord.Columns.id).limit(limit).fetchAll(db).map(\.invalidation)
        }
    }

    /// Marks invalidations the cache has applied. They are kept (for a replay into a Redis
    /// that lost them) until ``purgeExpiredSessions(now:)`` finds them older than
    /// ``invalidationRetention``.
    public func markInvalidationsApplied(_ ids: [Int64], now: Date) async throws {
        guard !ids.isEmpty else { return }
        let applied = Timestamp.milliseconds(now)
        try await database.pool.write { db in
            _ = try CacheInvalidationRecord.filter(keys: ids).updateAll(db, CacheInvalidationRecord.Columns.appliedAt.set(to: applied))
        }
    }

    /// Invalidations recorded at or after `since` (milliseconds), applied or not, with ids
    /// above `after`, oldest first: what a replay into a Redis that lost state applies again.
    public func recentInvalidations(since: Int64, after: Int64, limit: Int) async throws -> [CacheInvalidation] {
        try await database.pool.read { db in
            try CacheInvalidationRecord.filter(CacheInvalidationRecord.Columns.createdAt >= since && CacheInvalidationRecord.Columns.id > after)
                .order(CacheInvalidationRecord.Columns.id).limit(limit).fetchAll(db).map(\.invalidation)
        }
    }

    static func recordInvalidation(_ db: Database, tokenHash: String?, userId: String?) throws {
        try CacheInvalidationRecord(tokenHash: tokenHash, userId: userId, createdAt: Timestamp.milliseconds(Date())).insert(db)
    }

    // MARK: Rows

    static func insertSession(_ db: Database, _ session: NewSession, userId: String, client: ClientInfo) throws -> String {
        let record = SessionRecord(session, id: UUID().uuidString.lowercased(), userId: userId, client: client)
        try record.insert(db)
        return record.id
    }

    /// Deletes the selected sessions and audits each one; `client` nil means "the session's own client".
    /// Each revoked token hash also goes to the invalidation outbox, in the same transaction
    /// (I3), whether or not this process talks to Redis: a command run without
    /// `redis.url`, or an instance without Redis on the same database, revokes for the
    /// servers that cache too (they apply the outbox).
    @discardableResult
    func deleteSessions(_ db: Database, _ sessions: QueryInterfaceRequest<SessionRecord>, kind: AuditEventKind, reason: String?, client: ClientInfo?) throws -> Int {
        let found = try SessionWithUser.all(sessions).fetchAll(db)
        let now = Date()
        for row in found {
            let session = row.session
            try session.delete(db)
            if kind != .sessionExpired {
                try Self.recordInvalidation(db, tokenHash: session.tokenHash, userId: nil)
            }
            try Self.audit(db, AuditEvent(at: now, kind: kind, outcome: .success, reason: reason, userId: session.userId, email: row.user.email, sessionId: session.id, ip: client?.ip ?? session.ip, userAgent: client?.userAgent ?? session.userAgent))
        }
        return found.count
    }

    static func audit(_ db: Database, _ event: AuditEvent) throws {
        try AuditEventRecord(event).insert(db)
    }
}
