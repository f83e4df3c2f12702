import Foundation
import GRDB
import GatehouseCore

// The account lifecycle on the source of truth (SPEC §2.4): one-time tokens, password change
// and reset, email verification, TOTP, and the mail outbox. Every change commits its audit
// event, its cache invalidations (I3) and the mail it sends in one transaction; what the
// Redis cache must do next is returned as ``CacheEffects`` (see ``AccountStore``).
extension SQLiteAuthStore {
    // MARK: One-time tokens

    /// Stores a token's hash for `purpose` (expiring after the purpose's lifetime), with the
    /// mail that carries it and an audit event, in one transaction.
    public func issueToken(_ hash: TokenHash, purpose: AccountTokenPurpose, user: User, mail: OutgoingMail?, audit event: AuditEvent?) async throws {
        let now = Timestamp.milliseconds(Date())
        try await database.write { db in
            try AccountTokenRecord(tokenHash: hash.hex, purpose: purpose.rawValue, userId: user.id, createdAt: now, expiresAt: now + purpose.lifetime.milliseconds).insert(db)
            if let mail { try MailOutboxRecord(mail, userId: user.id, now: now).insert(db) }
            if let event { try Self.audit(db, event) }
        }
    }

    /// The owner of a live token, without using it up.
    public func tokenOwner(_ hash: TokenHash, purpose: AccountTokenPurpose) async throws -> User? {
        let now = Timestamp.milliseconds(Date())
        return try await database.pool.read { db in try Self.owner(db, hash, purpose, now: now) }
    }

    /// Uses a live token up (it is deleted) and returns its owner; `nil` for an unknown, used
    /// or expired one.
    public func consumeToken(_ hash: TokenHash, purpose: AccountTokenPurpose) async throws -> User? {
        let now = Timestamp.milliseconds(Date())
        return try await database.write { db in try Self.consume(db, hash, purpose, now: now) }
    }

    static func owner(_ db: Database, _ hash: TokenHash, _ purpose: AccountTokenPurpose, now: Int64) throws -> User? {
        guard let token = try AccountTokenRecord.live(hash, purpose, nowMilliseconds: now).fetchOne(db) else { return nil }
        return try UserRecord.fetchOne(db, key: token.userId)?.user
    }

    static func consume(_ db: Database, _ hash: TokenHash, _ purpose: AccountTokenPurpose, now: Int64) throws -> User? {
        guard let user = try owner(db, hash, purpose, now: now) else { return nil }
        try AccountTokenRecord.filter(AccountTokenRecord.Columns.tokenHash == hash.hex).deleteAll(db)
        return user
    }

    // MARK: Passwords

    /// A password change by the user: the new hash, every session of the user revoked (the
    /// current one included: its replacement is `session`), every reset link voided, audited.
    public func changePassword(user: User, passwordHash: String, session: NewSession, client: ClientInfo) async throws -> CacheEffects {
        try await database.write { db in
            let revoked = try self.setPassword(db, user: user, passwordHash: passwordHash, reason: "password_changed", client: client)
            let sessionId = try Self.insertSession(db, session, userId: user.id, client: client)
            try Self.audit(db, AuditEvent(at: session.createdAt, kind: .passwordChanged, outcome: .success, userId: user.id, email: user.email, sessionId: sessionId, ip: client.ip, userAgent: client.userAgent))
            return CacheEffects(revoked: revoked)
        }
    }

    /// A password set through a reset link: the token used up, the new hash, every session
    /// revoked, every other reset link voided, the login locks of the email lifted and the
    /// email marked verified (the link proves the mailbox as a verification link does).
    /// `nil` when the token is not live.
    public func resetPassword(token: TokenHash, passwordHash: String, client: ClientInfo) async throws -> (User, CacheEffects)? {
        let now = Timestamp.milliseconds(Date())
        return try await database.write { db in
            // A disabled account's link is used up without effect: only `user enable` brings it back.
            guard let user = try Self.consume(db, token, .passwordReset, now: now), user.isActive else { return nil }
            let revoked = try self.setPassword(db, user: user, passwordHash: passwordHash, reason: "password_reset", client: client)
            try LoginFailureRecord.filter(LoginFailureRecord.Columns.email == user.email).deleteAll(db)
            let verified = try Self.markVerified(db, user)
            try Self.audit(db, AuditEvent(at: Date(), kind: .passwordReset, outcome: .success, userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
            return (verified, CacheEffects(revoked: revoked, refreshed: [user.id]))
        }
    }

    /// Sets the hash, voids reset links and revokes every session; returns the revoked token hashes.
    private func setPassword(_ db: Database, user: User, passwordHash: String, reason: String, client: ClientInfo) throws -> [String] {
        try UserRecord.filter(key: user.id).updateAll(
            db, UserRecord.Columns.passwordHash.set(to: passwordHash), UserRecord.Columns.updatedAt.set(to: Timestamp.milliseconds(Date()))
        )
        try AccountTokenRecord.of(user.id, .passwordReset).deleteAll(db)
        // A login half done with the old password (an mfa_token) is not finished with the new one.
        try AccountTokenRecord.of(user.id, .mfaLogin).deleteAll(db)
        let sessions = SessionRecord.filter(SessionRecord.Columns.userId == user.id)
        let revoked = try sessions.fetchAll(db).map(\.tokenHash)
        try deleteSessions(db, sessions, kind: .sessionRevoked, reason: reason, client: client)
        return revoked
    }

    // MARK: Email verification

    /// Uses a verification token and marks its owner's email verified; `nil` when the token
    /// is not live.
    public func verifyEmail(token: TokenHash, client: ClientInfo) async throws -> (User, CacheEffects)? {
        let now = Timestamp.milliseconds(Date())
        return try await database.write { db in
            guard let user = try Self.consume(db, token, .emailVerification, now: now) else { return nil }
            let verified = try Self.markVerified(db, user)
            try AccountTokenRecord.of(user.id, .emailVerification).deleteAll(db)
            try Self.audit(db, AuditEvent(at: Date(), kind: .emailVerified, outcome: .success, reason: "link", userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
            return (verified, CacheEffects(refreshed: [user.id]))
        }
    }

    /// Marks an email verified by an administrator (`gatehouse user verify-email`); `nil` when
    /// no account has it.
    public func markEmailVerified(email: String, client: ClientInfo) async throws -> (User, CacheEffects)? {
        try await database.write { db in
            guard let user = try UserRecord.withEmail(email).fetchOne(db)?.user else { return nil }
            let verified = try Self.markVerified(db, user)
            try AccountTokenRecord.of(user.id, .emailVerification).deleteAll(db)
            try Self.audit(db, AuditEvent(at: Date(), kind: .emailVerified, outcome: .success, reason: "admin", userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
            return (verified, CacheEffects(refreshed: [user.id]))
        }
    }

    private static func markVerified(_ db: Database, _ user: User) throws -> User {
        try UserRecord.filter(key: user.id).updateAll(db, UserRecord.Columns.emailVerified.set(to: true), UserRecord.Columns.updatedAt.set(to: Timestamp.milliseconds(Date())))
        var verified = user
        verified.emailVerified = true
        return verified
    }

    // MARK: Sessions

    /// Revokes one of the user's own sessions by its public id; `nil` when the user has no
    /// session with that id (another user's id included).
    public func revokeOwnSession(userId: String, sessionId: String, client: ClientInfo) async throws -> CacheEffects? {
        try await database.write { db in
            let session = SessionRecord.filter(key: sessionId).filter(SessionRecord.Columns.userId == userId)
            guard let row = try session.fetchOne(db) else { return nil }
            try self.deleteSessions(db, session, kind: .sessionRevoked, reason: "user_revoked", client: client)
            return CacheEffects(revoked: [row.tokenHash])
        }
    }

    // MARK: TOTP

    /// The user's TOTP credential, confirmed or pending.
    public func totpCredential(userId: String) async throws -> TOTPCredential? {
        try await database.pool.read { db in try TOTPCredentialRecord.fetchOne(db, key: userId)?.credential }
    }

    /// Stores a new pending secret (replacing a pending one), audited. Throws
    /// ``AccountStoreError/mfaAlreadyEnabled`` when TOTP is on.
    public func beginTOTPSetup(user: User, sealedSecret: String, client: ClientInfo) async throws {
        let now = Timestamp.milliseconds(Date())
        try await database.write { db in
            if try TOTPCredentialRecord.fetchOne(db, key: user.id)?.confirmedAt != nil { throw AccountStoreError.mfaAlreadyEnabled }
            try TOTPCredentialRecord(userId: user.id, sealedSecret: sealedSecret, createdAt: now, confirmedAt: nil, lastUsedStep: nil).save(db)
            try Self.audit(db, AuditEvent(at: Date(), kind: .mfaSetupStarted, outcome: .success, userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
        }
    }

    /// Confirms the pending secret with the step of a right code: TOTP required from now on,
    /// the recovery codes stored (hashed). `false` when there is no pending secret or the step
    /// is a replay.
    public func confirmTOTP(user: User, step: Int64, recoveryCodeHashes: [String], client: ClientInfo) async throws -> CacheEffects? {
        try await database.write { db in
            let pending = TOTPCredentialRecord.filter(key: user.id).filter(TOTPCredentialRecord.Columns.confirmedAt == nil)
            guard try pending.fetchOne(db) != nil, try TOTPCredentialRecord.use(db, userId: user.id, step: step, confirmedOnly: false) else { return nil }
            try pending.updateAll(db, TOTPCredentialRecord.Columns.confirmedAt.set(to: Timestamp.milliseconds(Date())))
            try UserRecord.filter(key: user.id).updateAll(db, UserRecord.Columns.mfaEnabled.set(to: true))
            try Self.storeRecoveryCodes(db, userId: user.id, hashes: recoveryCodeHashes)
            try Self.audit(db, AuditEvent(at: Date(), kind: .mfaEnabled, outcome: .success, reason: "totp", userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
            return CacheEffects(refreshed: [user.id])
        }
    }

    /// Records a login's TOTP step; `false` when it is not after the last step used (a replay).
    public func useTOTPStep(userId: String, step: Int64) async throws -> Bool {
        try await database.write { db in try TOTPCredentialRecord.use(db, userId: userId, step: step, confirmedOnly: true) }
    }

    /// Uses a recovery code up; `false` when the user has no unused code with this hash.
    public func useRecoveryCode(userId: String, codeHash: String) async throws -> Bool {
        try await database.write { db in
            try RecoveryCodeRecord.filter(RecoveryCodeRecord.Columns.userId == userId && RecoveryCodeRecord.Columns.codeHash == codeHash).deleteAll(db) == 1
        }
    }

    /// How many unused recovery codes the user has.
    public func recoveryCodeCount(userId: String) async throws -> Int {
        try await database.pool.read { db in try RecoveryCodeRecord.filter(RecoveryCodeRecord.Columns.userId == userId).fetchCount(db) }
    }

    /// Replaces every recovery code of the user, audited.
    public func replaceRecoveryCodes(user: User, hashes: [String], client: ClientInfo) async throws {
        try await database.write { db in
            try Self.storeRecoveryCodes(db, userId: user.id, hashes: hashes)
            try Self.audit(db, AuditEvent(at: Date(), kind: .recoveryCodesRegenerated, outcome: .success, userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
        }
    }

    private static func storeRecoveryCodes(_ db: Database, userId: String, hashes: [String]) throws {
        try RecoveryCodeRecord.filter(RecoveryCodeRecord.Columns.userId == userId).deleteAll(db)
        for hash in hashes { try RecoveryCodeRecord(userId: userId, codeHash: hash).insert(db) }
    }

    /// Turns TOTP off: the secret, the recovery codes and pending MFA logins deleted, audited
    /// with `reason` (`user`, `admin`). `nil` when no account has the email.
    public func disableMFA(email: String, reason: String, client: ClientInfo) async throws -> (User, CacheEffects)? {
        try await database.write { db in
            guard let user = try UserRecord.withEmail(email).fetchOne(db)?.user else { return nil }
            try TOTPCredentialRecord.filter(key: user.id).deleteAll(db)
            try RecoveryCodeRecord.filter(RecoveryCodeRecord.Columns.userId == user.id).deleteAll(db)
            try AccountTokenRecord.of(user.id, .mfaLogin).deleteAll(db)
            try UserRecord.filter(key: user.id).updateAll(db, UserRecord.Columns.mfaEnabled.set(to: false))
            try Self.audit(db, AuditEvent(at: Date(), kind: .mfaDisabled, outcome: .success, reason: reason, userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
            var disabled = user
            disabled.mfaEnabled = false
            return (disabled, CacheEffects(refreshed: [user.id]))
        }
    }

    // MARK: The mail outbox

    /// Queues a message on its own (a resend), with an audit event.
    public func queueMail(_ mail: OutgoingMail, userId: String?, audit event: AuditEvent?) async throws {
        let now = Timestamp.milliseconds(Date())
        try await database.write { db in
            try MailOutboxRecord(mail, userId: userId, now: now).insert(db)
            if let event { try Self.audit(db, event) }
        }
    }

    /// Claims up to `limit` due messages for `lease`: no other instance takes them until the
    /// lease ends (then they are due again: an instance that died mid-send has its messages
    /// sent by another).
    public func claimDueMail(limit: Int, lease: Duration) async throws -> [OutboxMail] {
        let now = Timestamp.milliseconds(Date())
        // Polled every few seconds: a read finds most rounds empty without taking the write lock.
        let anyDue = try await database.pool.read { db in
            try MailOutboxRecord.pending.filter(MailOutboxRecord.Columns.nextAttemptAt <= now).isEmpty(db) == false
        }
        guard anyDue else { return [] }
        return try await database.write { db in
            let due = try MailOutboxRecord.pending
                .filter(MailOutboxRecord.Columns.nextAttemptAt <= now)
                .filter(MailOutboxRecord.Columns.claimedUntil == nil || MailOutboxRecord.Columns.claimedUntil <= now)
                .order(MailOutboxRecord.Columns.id).limit(limit).fetchAll(db)
            try MailOutboxRecord.filter(keys: due.compactMap(\.id)).updateAll(db, MailOutboxRecord.Columns.claimedUntil.set(to: now + lease.milliseconds))
            return due.map(\.outbox)
        }
    }

    /// Marks a message sent; its text (which carries a token) is cleared.
    public func markMailSent(id: Int64) async throws {
        let now = Timestamp.milliseconds(Date())
        try await database.pool.write { db in
            _ = try MailOutboxRecord.filter(key: id).updateAll(
                db, MailOutboxRecord.Columns.sentAt.set(to: now), MailOutboxRecord.Columns.message.set(to: ""), MailOutboxRecord.Columns.claimedUntil.set(to: nil)
            )
        }
    }

    /// Records a failed attempt: due again at `retryAt`, or given up on when `retryAt` is
    /// `nil` (text cleared). `error` is the transport's one-line reason (no secret).
    public func markMailFailed(id: Int64, error: String, retryAt: Date?) async throws {
        try await database.pool.write { db in
            var changes = [
                MailOutboxRecord.Columns.attempts.set(to: MailOutboxRecord.Columns.attempts + 1), MailOutboxRecord.Columns.lastError.set(to: String(error.prefix(500))),
                MailOutboxRecord.Columns.claimedUntil.set(to: nil),
            ]
            if let retryAt {
                changes.append(MailOutboxRecord.Columns.nextAttemptAt.set(to: Timestamp.milliseconds(retryAt)))
            } else {
                changes += [MailOutboxRecord.Columns.failedAt.set(to: Timestamp.milliseconds(Date())), MailOutboxRecord.Columns.message.set(to: "")]
            }
            _ = try MailOutboxRecord.filter(key: id).updateAll(db, changes)
        }
    }

    /// Messages neither sent nor given up on (for readiness and tests).
    public func pendingMailCount() async throws -> Int {
        try await database.pool.read { db in try MailOutboxRecord.pending.fetchCount(db) }
    }

    /// Deletes expired tokens and outbox rows finished more than a week ago.
    static func purgeAccountRows(_ db: Database, nowMilliseconds: Int64) throws {
        try AccountTokenRecord.filter(AccountTokenRecord.Columns.expiresAt <= nowMilliseconds).deleteAll(db)
        let week = nowMilliseconds - 7 * 86_400_000
        try MailOutboxRecord.filter(MailOutboxRecord.Columns.sentAt <= week || MailOutboxRecord.Columns.failedAt <= week).deleteAll(db)
    }
}

/// Domain answers of the account store.
public enum AccountStoreError: Error, Sendable, Equatable {
    /// TOTP is already on: setup again needs it off first.
    case mfaAlreadyEnabled
}
