import Foundation
import GRDB
import GatehouseCore

/// A row of `account_tokens`: a one-time token's SHA-256 (never the token, I1), its purpose,
/// owner and expiry.
struct AccountTokenRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "account_tokens"

    enum Columns {
        static let tokenHash = Column(CodingKeys.tokenHash)
        static let purpose = Column(CodingKeys.purpose)
        static let userId = Column(CodingKeys.userId)
        static let expiresAt = Column(CodingKeys.expiresAt)
    }

    enum CodingKeys: String, CodingKey {
        case tokenHash = "token_hash"
        case purpose
        case userId = "user_id"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
    }

    var tokenHash: String
    var purpose: String
    var userId: String
    var createdAt: Int64
    var expiresAt: Int64

    /// The live token of `purpose` with this hash.
    static func live(_ hash: TokenHash, _ purpose: AccountTokenPurpose, nowMilliseconds: Int64) -> QueryInterfaceRequest<AccountTokenRecord> {
        filter(Columns.tokenHash == hash.hex && Columns.purpose == purpose.rawValue && Columns.expiresAt > nowMilliseconds)
    }

    /// Every token of `purpose` a user holds.
    static func of(_ userId: String, _ purpose: AccountTokenPurpose) -> QueryInterfaceRequest<AccountTokenRecord> {
        filter(Columns.userId == userId && Columns.purpose == purpose.rawValue)
    }
}

/// A row of `totp_credentials`: the sealed secret and the last step accepted.
struct TOTPCredentialRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "totp_credentials"

    enum Columns {
        static let userId = Column(CodingKeys.userId)
        static let confirmedAt = Column(CodingKeys.confirmedAt)
        static let lastUsedStep = Column(CodingKeys.lastUsedStep)
    }

    enum CodingKeys: String, CodingKey {
        case userId = "user_id"
        case sealedSecret = "sealed_secret"
        case createdAt = "created_at"
        case confirmedAt = "confirmed_at"
        case lastUsedStep = "last_used_step"
    }

    var userId: String
    var sealedSecret: String
    var createdAt: Int64
    var confirmedAt: Int64?
    var lastUsedStep: Int64?

    /// The domain value.
    var credential: TOTPCredential {
        TOTPCredential(sealedSecret: sealedSecret, confirmed: confirmedAt != nil, lastUsedStep: lastUsedStep)
    }

    /// Records `step` as used unless it is not after the last one used; `true` when it was
    /// recorded. One conditional UPDATE, so two requests with one code cannot both pass.
    static func use(_ db: Database, userId: String, step: Int64, confirmedOnly: Bool) throws -> Bool {
        var request = filter(Columns.userId == userId).filter(Columns.lastUsedStep == nil || Columns.lastUsedStep < step)
        if confirmedOnly { request = request.filter(Columns.confirmedAt != nil) }
        return try request.updateAll(db, Columns.lastUsedStep.set(to: step)) == 1
    }
}

/// A row of `recovery_codes`: one unused code's hash.
struct RecoveryCodeRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "recovery_codes"

    enum Columns {
        static let userId = Column(CodingKeys.userId)
        static let codeHash = Column(CodingKeys.codeHash)
    }

    enum CodingKeys: String, CodingKey {
        case userId = "user_id"
        case codeHash = "code_hash"
    }

    var userId: String
    var codeHash: String
}

/// A row of `mail_outbox`: one message from the transaction that queued it until it is sent
/// (or given up on).
struct MailOutboxRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "mail_outbox"

    enum Columns {
        static let id = Column(CodingKeys.id)
        static let createdAt = Column(CodingKeys.createdAt)
        static let message = Column(CodingKeys.message)
        static let attempts = Column(CodingKeys.attempts)
        static let nextAttemptAt = Column(CodingKeys.nextAttemptAt)
        static let claimedUntil = Column(CodingKeys.claimedUntil)
        static let sentAt = Column(CodingKeys.sentAt)
        static let failedAt = Column(CodingKeys.failedAt)
        static let lastError = Column(CodingKeys.lastError)
    }

    enum CodingKeys: String, CodingKey {
        case id
        case createdAt = "created_at"
        case purpose
        case userId = "user_id"
        case envelopeFrom = "envelope_from"
        case recipient, message, attempts
        case nextAttemptAt = "next_attempt_at"
        case claimedUntil = "claimed_until"
        case sentAt = "sent_at"
        case failedAt = "failed_at"
        case lastError = "last_error"
    }

    var id: Int64?
    var createdAt: Int64
    var purpose: String
    var userId: String?
    var envelopeFrom: String
    var recipient: String
    var message: String
    var attempts: Int
    var nextAttemptAt: Int64
    var claimedUntil: Int64?
    var sentAt: Int64?
    var failedAt: Int64?
    var lastError: String?

    /// A message queued now, due at once.
    init(_ mail: OutgoingMail, userId: String?, now: Int64) {
        createdAt = now
        purpose = mail.purpose
        self.userId = userId
        envelopeFrom = mail.envelopeFrom
        recipient = mail.recipient
        message = mail.message
        attempts = 0
        nextAttemptAt = now
    }

    /// The value the delivery service sends.
    var outbox: OutboxMail {
        OutboxMail(
            id: id ?? 0, createdAt: Timestamp.date(milliseconds: createdAt), attempts: attempts,
            mail: OutgoingMail(purpose: purpose, envelopeFrom: envelopeFrom, recipient: recipient, message: message)
        )
    }

    /// Messages neither sent nor given up on.
    static let pending = filter(Columns.sentAt == nil && Columns.failedAt == nil)
}
