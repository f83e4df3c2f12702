import Foundation

/// The kinds of event the audit log records.
public enum AuditEventKind: String, Sendable, CaseIterable {
    /// An account was created.
    case signup
    /// A login succeeded or failed (see ``AuditEvent/reason``).
    case login
    /// A session was ended by its holder.
    case logout
    /// A session reached its expiry or idle limit.
    case sessionExpired = "session_expired"
    /// A session was revoked by an administrator or by an account change.
    case sessionRevoked = "session_revoked"
    /// An account was disabled.
    case userDisabled = "user_disabled"
    /// An account was enabled again.
    case userEnabled = "user_enabled"
    /// An account was deleted.
    case userDeleted = "user_deleted"
    /// Repeated failed logins locked an account's logins (from elsewhere, or from one address).
    case loginLocked = "login_locked"
    /// An administrator lifted an account's login locks.
    case loginUnlocked = "login_unlocked"
    /// A request went past an `abuse.*` limit (audited once per window and subject).
    case rateLimited = "rate_limited"
    /// A state change from another site was refused (SPEC §2.4 cross-site protection).
    case crossSiteRefused = "csrf_refused"
    /// A user changed their password (with the current one).
    case passwordChanged = "password_changed"
    /// A password reset was asked for (`unknown_email` when no account has the address).
    case passwordResetRequested = "password_reset_requested"
    /// A password was set through a reset link (or a reset link was refused).
    case passwordReset = "password_reset"
    /// An email address was verified (by its link, or by an administrator).
    case emailVerified = "email_verified"
    /// A verification mail was queued (at signup or on request).
    case emailVerificationSent = "email_verification_sent"
    /// A password was right and the second factor is asked for.
    case mfaChallenged = "mfa_challenged"
    /// TOTP setup began (a new secret was issued).
    case mfaSetupStarted = "mfa_setup_started"
    /// TOTP was confirmed and is required at login from now on.
    case mfaEnabled = "mfa_enabled"
    /// TOTP was turned off (by the user with the password, or by an administrator).
    case mfaDisabled = "mfa_disabled"
    /// New recovery codes replaced the old ones.
    case recoveryCodesRegenerated = "recovery_codes_regenerated"
}

/// Whether the audited action happened.
public enum AuditOutcome: String, Sendable {
    /// It happened.
    case success
    /// It was refused.
    case failure
}

/// One row of the append-only audit log. Holds no secret: never a token, password or hash.
public struct AuditEvent: Sendable, Equatable {
    /// Row id, increasing.
    public var id: Int64
    /// When it happened.
    public var at: Date
    /// What happened.
    public var kind: AuditEventKind
    /// Whether it succeeded.
    public var outcome: AuditOutcome
    /// Why it failed, or what caused it (`wrong_password`, `unknown_email`, `admin`, …).
    public var reason: String?
    /// The account concerned, when known.
    public var userId: String?
    /// The email concerned, normalised; `nil` for a failed login whose email field did not
    /// hold an address (it may have held the password).
    public var email: String?
    /// The public id of the session concerned.
    public var sessionId: String?
    /// Client address.
    public var ip: String
    /// Client user agent.
    public var userAgent: String

    /// Creates an event value.
    public init(id: Int64 = 0, at: Date, kind: AuditEventKind, outcome: AuditOutcome, reason: String? = nil, userId: String? = nil, email: String? = nil, sessionId: String? = nil, ip: String, userAgent: String) {
        self.id = id
        self.at = at
        self.kind = kind
        self.outcome = outcome
        self.reason = reason
        self.userId = userId
        self.email = email
        self.sessionId = sessionId
        self.ip = ip
        self.userAgent = userAgent
    }
}
