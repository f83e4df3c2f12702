import Foundation

/// A person who can log in.
public struct User: Sendable, Equatable {
    /// Stable id, a lowercase UUID.
    public var id: String
    /// Trimmed, lowercased email.
    public var email: String
    /// When the account was created.
    public var createdAt: Date
    /// Whether the email address has been confirmed.
    public var emailVerified: Bool
    /// Whether a second factor is required at login.
    public var mfaEnabled: Bool
    /// When an administrator disabled the account; `nil` while active.
    public var disabledAt: Date?

    /// Creates a user value.
    public init(id: String, email: String, createdAt: Date, emailVerified: Bool = false, mfaEnabled: Bool = false, disabledAt: Date? = nil) {
        self.id = id
        self.email = email
        self.createdAt = createdAt
        self.emailVerified = emailVerified
        self.mfaEnabled = mfaEnabled
        self.disabledAt = disabledAt
    }

    /// Whether the account may log in and its sessions validate.
    public var isActive: Bool { disabledAt == nil }
}

/// A logged-in session as stored: never the token, only its hash.
public struct Session: Sendable, Equatable {
    /// Public id, used to list and revoke a session; not a secret.
    public var id: String
    /// SHA-256 of the token.
    public var tokenHash: TokenHash
    /// Owner.
    public var userId: String
    /// Login time.
    public var createdAt: Date
    /// Absolute expiry.
    public var expiresAt: Date
    /// Last request seen, written at most once a minute.
    public var lastSeenAt: Date
    /// Client address at login.
    public var ip: String
    /// Client user agent at login.
    public var userAgent: String

    /// Creates a session value.
    public init(id: String, tokenHash: TokenHash, userId: String, createdAt: Date, expiresAt: Date, lastSeenAt: Date, ip: String, userAgent: String) {
        self.id = id
        self.tokenHash = tokenHash
        self.userId = userId
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastSeenAt = lastSeenAt
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// Who made a request, as recorded in sessions and the audit log.
public struct ClientInfo: Sendable, Equatable {
    /// Longest user agent kept.
    public static let maximumUserAgentLength = 512

    /// Client IP address.
    public var ip: String
    /// `User-Agent`, cut to ``maximumUserAgentLength`` characters.
    public var userAgent: String

    /// Creates client info, cutting an over-long user agent.
    public init(ip: String, userAgent: String) {
        self.ip = ip
        self.userAgent = String(userAgent.prefix(Self.maximumUserAgentLength))
    }

    /// For actions taken from the command line.
    public static let commandLine = ClientInfo(ip: "cli", userAgent: "gatehouse-cli")
}

/// RFC 3339 timestamps in UTC, as the API writes them.
public enum Timestamp {
    /// `2026-11-25T01:07:50Z`.
    public static func rfc3339(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon).timeZone(separator: .omitted))
    }

    /// Milliseconds since 1970, as the database stores times.
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// The date for stored milliseconds.
    public static func date(milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
