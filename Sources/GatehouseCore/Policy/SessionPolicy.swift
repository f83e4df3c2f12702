/// Whether a stored session is live, and when its `last_seen_at` must be written: decided
/// here alone, for SQLite, the Redis cache and the in-process cache alike (SPEC §1).
///
/// - A session is live before `expires_at`, while its user is active, and, with an idle
///   timeout, until `last_seen_at + idle_timeout`: exactly as configured, never later.
/// - `last_seen_at` is written when a request finds it at least ``lastSeenInterval`` old.
///   The interval is at most 5 % of the idle timeout (and at most a minute), so a session in
///   use never lapses, and one left alone lapses between 95 % and 100 % of the idle timeout
///   after its last request: never after it.
/// - A cache may answer for a session until its next `last_seen_at` write is due (and never
///   after its expiry): ``answerableUntil(_:_:nowMilliseconds:cacheTTL:)``.
public struct SessionPolicy: Sendable, Equatable {
    /// Sessions unused this long stop validating; zero turns it off.
    public let idleTimeout: Duration
    /// `last_seen_at` is written at most this often per session.
    public let lastSeenInterval: Duration

    /// The longest interval between `last_seen_at` writes, idle timeout or not.
    public static let maximumLastSeenInterval = Duration.seconds(60)
    /// The interval as a fraction of the idle timeout: the error of idle expiry.
    public static let lastSeenFraction = 20

    /// The policy for an idle timeout (zero: none).
    public init(idleTimeout: Duration = .zero) {
        self.idleTimeout = idleTimeout
        let fraction = idleTimeout / Self.lastSeenFraction
        self.lastSeenInterval = idleTimeout > .zero ? max(.milliseconds(1), min(Self.maximumLastSeenInterval, fraction)) : Self.maximumLastSeenInterval
    }

    /// What a stored session amounts to at a moment.
    public enum Verdict: Sendable, Equatable {
        /// Live; `writeDue` when its `last_seen_at` must be written now.
        case live(writeDue: Bool)
        /// Past its absolute expiry or idle limit.
        case expired
        /// Its user is disabled.
        case userDisabled
    }

    /// The verdict on `session` of `user` at `nowMilliseconds` (since 1970).
    public func verdict(_ user: User, _ session: Session, nowMilliseconds: Int64) -> Verdict {
        guard user.isActive else { return .userDisabled }
        if isExpired(session, nowMilliseconds: nowMilliseconds) { return .expired }
        return .live(writeDue: isWriteDue(session, nowMilliseconds: nowMilliseconds))
    }

    /// Past `expires_at`, or unused for the idle timeout.
    public func isExpired(_ session: Session, nowMilliseconds: Int64) -> Bool {
        if Timestamp.milliseconds(session.expiresAt) <= nowMilliseconds { return true }
        guard idleTimeout > .zero else { return false }
        return Timestamp.milliseconds(session.lastSeenAt) + idleTimeout.milliseconds <= nowMilliseconds
    }

    /// Whether a request now must write `last_seen_at`.
    public func isWriteDue(_ session: Session, nowMilliseconds: Int64) -> Bool {
        nowMilliseconds - Timestamp.milliseconds(session.lastSeenAt) >= lastSeenInterval.milliseconds
    }

    /// `last_seen_at` values at or below this are written by a request at `nowMilliseconds`
    /// (the guard of the throttled `UPDATE`).
    public func lastSeenWriteCutoff(nowMilliseconds: Int64) -> Int64 {
        nowMilliseconds - lastSeenInterval.milliseconds
    }

    /// Sessions whose `last_seen_at` is at or below this have lapsed by the idle timeout at
    /// `nowMilliseconds`; `nil` without one.
    public func idleCutoff(nowMilliseconds: Int64) -> Int64? {
        idleTimeout > .zero ? nowMilliseconds - idleTimeout.milliseconds : nil
    }

    /// Until when (milliseconds since 1970) a cache may answer for this session without the
    /// stores: before its expiry, its next `last_seen_at` write and `cacheTTL` from now. `nil`
    /// when it must not answer at all (a disabled user, or an answer due from the stores
    /// now). The idle limit needs no term of its own: it falls after the next write is due.
    public func answerableUntil(_ user: User, _ session: Session, nowMilliseconds: Int64, cacheTTL: Duration) -> Int64? {
        guard case .live(writeDue: false) = verdict(user, session, nowMilliseconds: nowMilliseconds) else { return nil }
        return min(
            Timestamp.milliseconds(session.expiresAt),
            Timestamp.milliseconds(session.lastSeenAt) + lastSeenInterval.milliseconds,
            nowMilliseconds + cacheTTL.milliseconds
        )
    }
}

/// Who a live session belongs to: what route policies and identity headers need, carried
/// the same way by every store and cache.
public struct Identity: Sendable, Equatable {
    /// The user's id (`X-User-Id`).
    public var userId: String
    /// The user's email (`X-User-Email`).
    public var email: String
    /// Whether the email address is confirmed.
    public var emailVerified: Bool
    /// Whether the account has a second factor.
    public var mfaEnabled: Bool
    /// Group names, for route policies to come; empty today.
    public var groups: [String]

    /// Creates an identity.
    public init(userId: String, email: String, emailVerified: Bool = false, mfaEnabled: Bool = false, groups: [String] = []) {
        self.userId = userId
        self.email = email
        self.emailVerified = emailVerified
        self.mfaEnabled = mfaEnabled
        self.groups = groups
    }
}

extension User {
    /// The identity a session of this user carries.
    public var identity: Identity {
        Identity(userId: id, email: email, emailVerified: emailVerified, mfaEnabled: mfaEnabled)
    }
}
