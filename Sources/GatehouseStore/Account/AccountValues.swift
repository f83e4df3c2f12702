import Foundation
import GatehouseCore

/// What a one-time account token is for; each purpose has its own lifetime (SPEC §2.4).
public enum AccountTokenPurpose: String, Sendable, CaseIterable {
    /// `POST /auth/password/reset`: 30 minutes, void after any password change.
    case passwordReset = "password_reset"
    /// `POST /auth/email/verify`: 24 hours.
    case emailVerification = "email_verification"
    /// `POST /auth/login/mfa`: the password was right; 5 minutes.
    case mfaLogin = "mfa_login"

    /// How long a token of this purpose is accepted.
    public var lifetime: Duration {
        switch self {
        case .passwordReset: .seconds(30 * 60)
        case .emailVerification: .seconds(24 * 3600)
        case .mfaLogin: .seconds(5 * 60)
        }
    }
}

/// A message to queue in the mail outbox, rendered: what the transport sends, byte for byte.
public struct OutgoingMail: Sendable, Equatable {
    /// Why it is sent (`password_reset`, `email_verification`), for logs; never its content.
    public var purpose: String
    /// The envelope sender (`MAIL FROM`).
    public var envelopeFrom: String
    /// The one recipient (`RCPT TO`).
    public var recipient: String
    /// The RFC 5322 message, CRLF line ends.
    public var message: String

    /// Creates an outgoing message.
    public init(purpose: String, envelopeFrom: String, recipient: String, message: String) {
        self.purpose = purpose
        self.envelopeFrom = envelopeFrom
        self.recipient = recipient
        self.message = message
    }
}

/// A queued message claimed for delivery by one instance.
public struct OutboxMail: Sendable, Equatable {
    /// Outbox row id.
    public var id: Int64
    /// When it was queued.
    public var createdAt: Date
    /// Failed attempts so far.
    public var attempts: Int
    /// The message.
    public var mail: OutgoingMail
}

/// A user's TOTP secret, sealed, and how far it has been used.
public struct TOTPCredential: Sendable, Equatable {
    /// The sealed secret (``SecretBox``), bound to the user id.
    public var sealedSecret: String
    /// Whether setup was confirmed with a code (TOTP is then required at login).
    public var confirmed: Bool
    /// The last time step accepted: a code of that step or an earlier one is a replay.
    public var lastUsedStep: Int64?
}

/// What a change of the account did that the Redis cache must be told: sessions revoked
/// (tombstoned) and users whose cached entries are out of date (dropped, not revoked).
public struct CacheEffects: Sendable, Equatable {
    /// Token hashes of revoked sessions.
    public var revoked: [String] = []
    /// Users whose cached sessions carry a stale user (email verified, MFA on or off).
    public var refreshed: [String] = []

    /// No effect.
    public static let none = CacheEffects()
}
