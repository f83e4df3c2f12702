import Foundation
import GatehouseCore
import GRDB

/// Everything Gatehouse holds on one user (`gatehouse user export`), as a person asking for
/// their data would read it. Secrets stay out: no password hash, token hash, TOTP secret,
/// recovery code hash or mail text (which carries a link's token).
public struct UserExport: Encodable, Sendable {
    public struct Account: Encodable, Sendable {
        public var id: String
        public var email: String
        public var createdAt: String
        public var updatedAt: String
        public var emailVerified: Bool
        public var mfaEnabled: Bool
        public var disabledAt: String?
    }

    public struct SessionEntry: Encodable, Sendable {
        public var id: String
        public var createdAt: String
        public var expiresAt: String
        public var lastSeenAt: String
        public var ip: String
        public var userAgent: String
    }

    public struct SecondFactor: Encodable, Sendable {
        public var totpCreatedAt: String
        public var totpConfirmedAt: String?
        public var recoveryCodesLeft: Int
    }

    public struct PendingLink: Encodable, Sendable {
        public var purpose: String
        public var createdAt: String
        public var expiresAt: String
    }

    public struct LoginFailures: Encodable, Sendable {
        /// The address the failures came from, or `other addresses` for the shared bucket.
        public var address: String
        public var failures: Int
        public var windowStartedAt: String
        public var lockedUntil: String?
    }

    public struct Mail: Encodable, Sendable {
        public var purpose: String
        public var createdAt: String
        public var attempts: Int
        public var sentAt: String?
        public var failedAt: String?
    }

    public struct AuditEntry: Encodable, Sendable {
        public var id: Int64
        public var at: String
        public var event: String
        public var outcome: String
        public var reason: String?
        public var sessionId: String?
        public var ip: String
        public var userAgent: String
    }

    public var exportedAt: String
    public var account: Account
    public var sessions: [SessionEntry]
    public var secondFactor: SecondFactor?
    public var pendingLinks: [PendingLink]
    public var loginFailures: [LoginFailures]
    public var mail: [Mail]
    public var audit: [AuditEntry]
}

/// What `gatehouse user delete --erase` did.
public struct Erasure: Sendable, Equatable {
    /// The pseudonym the user's audit rows now carry instead of their id.
    public var pseudonym: String
    /// Audit rows pseudonymised.
    public var auditRows: Int
    /// Sessions revoked.
    public var sessions: Int
    /// What the Redis cache must be told.
    public var effects: CacheEffects
}

extension SQLiteAuthStore {
    /// Everything held on the account with this email, read in one transaction; `nil` when
    /// there is none.
    public func exportUser(email: String, now: Date) async throws -> UserExport? {
        try await database.pool.read { db in
            guard let user = try UserRecord.withEmail(email).fetchOne(db) else { return nil }
            func time(_ milliseconds: Int64) -> String { Timestamp.rfc3339(Timestamp.date(milliseconds: milliseconds)) }
            let sessions = try SessionRecord.filter(SessionRecord.Columns.userId == user.id).order(SessionRecord.Columns.createdAt).fetchAll(db).map {
                UserExport.SessionEntry(id: $0.id, createdAt: time($0.createdAt), expiresAt: time($0.expiresAt), lastSeenAt: time($0.lastSeenAt), ip: $0.ip, userAgent: $0.userAgent)
            }
            var secondFactor: UserExport.SecondFactor?
            if let totp = try TOTPCredentialRecord.filter(key: user.id).fetchOne(db) {
                let codes = try RecoveryCodeRecord.filter(RecoveryCodeRecord.Columns.userId == user.id).fetchCount(db)
                secondFactor = UserExport.SecondFactor(totpCreatedAt: time(totp.createdAt), totpConfirmedAt: totp.confirmedAt.map(time), recoveryCodesLeft: codes)
            }
            let links = try AccountTokenRecord.filter(AccountTokenRecord.Columns.userId == user.id).fetchAll(db).map {
                UserExport.PendingLink(purpose: $0.purpose, createdAt: time($0.createdAt), expiresAt: time($0.expiresAt))
            }
            let failures = try LoginFailureRecord.filter(LoginFailureRecord.Columns.email == user.email).fetchAll(db).map {
                UserExport.LoginFailures(
                    address: $0.address.isEmpty ? "other addresses" : $0.address, failures: $0.failures, windowStartedAt: time($0.windowStartedAt),
                    lockedUntil: $0.lockedUntil.map(time)
                )
            }
            let mail = try MailOutboxRecord.filter(Column("user_id") == user.id).order(MailOutboxRecord.Columns.createdAt).fetchAll(db).map {
                UserExport.Mail(purpose: $0.purpose, createdAt: time($0.createdAt), attempts: $0.attempts, sentAt: $0.sentAt.map(time), failedAt: $0.failedAt.map(time))
            }
            let audit = try AuditEventRecord.filter(AuditEventRecord.Columns.userId == user.id || AuditEventRecord.Columns.email == user.email)
                .order(AuditEventRecord.Columns.id).fetchAll(db).map(\.event).map {
                    UserExport.AuditEntry(
                        id: $0.id, at: Timestamp.rfc3339($0.at), event: $0.kind.rawValue, outcome: $0.outcome.rawValue, reason: $0.reason, sessionId: $0.sessionId,
                        ip: $0.ip, userAgent: $0.userAgent
                    )
                }
            let account = UserExport.Account(
                id: user.id, email: user.email, createdAt: time(user.createdAt), updatedAt: time(user.updatedAt), emailVerified: user.emailVerified,
                mfaEnabled: user.mfaEnabled, disabledAt: user.disabledAt.map(time)
            )
            return UserExport(
                exportedAt: Timestamp.rfc3339(now), account: account, sessions: sessions, secondFactor: secondFactor, pendingLinks: links,
                loginFailures: failures, mail: mail, audit: audit
            )
        }
    }

    /// Deletes the account with this email and everything held on it (sessions, links, second
    /// factor, login-failure counts, its mail), and pseudonymises its audit rows: each keeps
    /// what happened and when, but its user id becomes one random pseudonym (so the history
    /// still reads as one person's), and its email, address and user agent are cleared. One
    /// transaction; `nil` when there is no such account.
    public func eraseUser(email: String, client: ClientInfo) async throws -> Erasure? {
        try await database.write { db in
            guard let user = try UserRecord.withEmail(email).fetchOne(db) else { return nil }
            let tokenHashes = try SessionRecord.filter(SessionRecord.Columns.userId == user.id).fetchAll(db).map(\.tokenHash)
            let sessions = try self.deleteSessions(db, SessionRecord.filter(SessionRecord.Columns.userId == user.id), kind: .sessionRevoked, reason: "user_erased", client: client)
            try Self.recordInvalidation(db, tokenHash: nil, userId: user.id)
            try user.delete(db)
            try LoginFailureRecord.filter(LoginFailureRecord.Columns.email == user.email).deleteAll(db)
            try db.execute(sql: "DELETE FROM mail_outbox WHERE user_id = ? OR recipient = ?", arguments: [user.id, user.email])
            let pseudonym = "erased-" + (0..<12).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max)) }.joined()
            let rows = try Self.auditMaintenance(db, purpose: "erasure") {
                try db.execute(
                    sql: "UPDATE audit_events SET user_id = ?, email = NULL, ip = '', user_agent = '' WHERE user_id = ? OR email = ?",
                    arguments: [pseudonym, user.id, user.email]
                )
                return db.changesCount
            }
            try Self.audit(db, AuditEvent(at: Date(), kind: .userDeleted, outcome: .success, reason: "erased", userId: pseudonym, ip: client.ip, userAgent: client.userAgent))
            return Erasure(pseudonym: pseudonym, auditRows: rows, sessions: sessions, effects: CacheEffects(revoked: tokenHashes, refreshed: [user.id]))
        }
    }

    /// Runs `body` with the audit log's `purpose` write allowed (see the `v6_audit_maintenance`
    /// migration), inside the caller's transaction.
    static func auditMaintenance<T>(_ db: Database, purpose: String, _ body: () throws -> T) throws -> T {
        try db.execute(sql: "INSERT INTO audit_maintenance (purpose) VALUES (?)", arguments: [purpose])
        let result = try body()
        try db.execute(sql: "DELETE FROM audit_maintenance WHERE purpose = ?", arguments: [purpose])
        return result
    }

    /// Audit rows after `id`, oldest first (`gatehouse audit --follow`).
    public func auditEvents(after id: Int64, limit: Int) async throws -> [AuditEvent] {
        try await database.pool.read { db in
            try AuditEventRecord.filter(AuditEventRecord.Columns.id > id).order(AuditEventRecord.Columns.id).limit(limit).fetchAll(db).map(\.event)
        }
    }
}
