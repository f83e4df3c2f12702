import Foundation

/// A rate limit: at most `count` attempts per `period` (SPEC §4 `abuse.*`, written `N/duration`).
///
/// A window opens with the first attempt and lasts `period`; attempts past `count` in it are
/// refused until it closes. Every instance counts in one Redis key per window, so the sum of
/// what all instances let through never exceeds `count`.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// Attempts allowed per window.
    public var count: Int
    /// The window's length.
    public var period: Duration

    /// Creates a limit.
    public init(_ count: Int, per period: Duration) {
        self.count = count
        self.period = period
    }

    /// Parses `N/duration` (`20/1m`), or `0` for no limit (`nil` inside `.some`); `nil` when malformed.
    public static func parse(_ text: String) -> RateLimit?? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "0" || trimmed == "off" { return .some(nil) }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), (1...1_000_000).contains(count),
            let period = ConfigDuration.parse(String(parts[1])), period > .zero
        else { return nil }
        return .some(RateLimit(count, per: period))
    }

    /// `N/duration`.
    public var description: String { "\(count)/\(ConfigDuration.format(period))" }
}

/// The abuse limits of SPEC §2.4: per client IP and per account, `nil` where turned off.
public struct AbuseConfiguration: Sendable, Equatable {
    /// Login attempts per client IP.
    public var loginPerIP: RateLimit?
    /// Login attempts per account (see ``LoginBucket`` for how attempts are grouped).
    public var loginPerAccount: RateLimit?
    /// Signups per client IP.
    public var signupPerIP: RateLimit?
    /// Password-reset requests per client IP.
    public var forgotPerIP: RateLimit?
    /// Password-reset requests per account.
    public var forgotPerAccount: RateLimit?
    /// Second-factor attempts per account.
    public var mfaPerAccount: RateLimit?
    /// Temporary lockout after repeated failed logins.
    public var lockout: LockoutConfiguration

    /// The defaults of SPEC §4.
    public init(
        loginPerIP: RateLimit? = RateLimit(20, per: .seconds(60)), loginPerAccount: RateLimit? = RateLimit(10, per: .seconds(900)),
        signupPerIP: RateLimit? = RateLimit(10, per: .seconds(3600)), forgotPerIP: RateLimit? = RateLimit(5, per: .seconds(900)),
        forgotPerAccount: RateLimit? = RateLimit(3, per: .seconds(3600)), mfaPerAccount: RateLimit? = RateLimit(10, per: .seconds(300)),
        lockout: LockoutConfiguration = .init()
    ) {
        self.loginPerIP = loginPerIP
        self.loginPerAccount = loginPerAccount
        self.signupPerIP = signupPerIP
        self.forgotPerIP = forgotPerIP
        self.forgotPerAccount = forgotPerAccount
        self.mfaPerAccount = mfaPerAccount
        self.lockout = lockout
    }

    /// Every limit and the lockout turned off.
    public static let off = AbuseConfiguration(
        loginPerIP: nil, loginPerAccount: nil, signupPerIP: nil, forgotPerIP: nil, forgotPerAccount: nil, mfaPerAccount: nil,
        lockout: LockoutConfiguration(maxFailures: 0)
    )
}

/// `abuse.lockout`: after `maxFailures` failed logins within `window`, logins fail for `ban`.
public struct LockoutConfiguration: Sendable, Equatable {
    /// Failed logins that lock; 0 turns the lockout off.
    public var maxFailures: Int
    /// How far back failures are counted.
    public var window: Duration
    /// How long a lock lasts.
    public var ban: Duration

    /// The defaults of SPEC §4.
    public init(maxFailures: Int = 10, window: Duration = .seconds(900), ban: Duration = .seconds(900)) {
        self.maxFailures = maxFailures
        self.window = window
        self.ban = ban
    }
}
