import Foundation
import GatehouseCore

/// A user together with the password hash that only login needs.
public struct LoginCandidate: Sendable {
    /// The account.
    public var user: User
    /// Its Argon2id PHC string.
    public var passwordHash: String

    /// Creates a candidate.
    public init(user: User, passwordHash: String) {
        self.user = user
        self.passwordHash = passwordHash
    }
}

/// What validating a session token found.
public enum SessionValidation: Sendable, Equatable {
    /// The session is live and its user active.
    case valid(User, Session)
    /// No session with this token hash exists (never did, revoked, or purged).
    case unknown
    /// The session exists but is past its absolute expiry or idle limit.
    case expired
    /// The session's user is disabled.
    case userDisabled
}

/// Which sessions an administrator revokes.
public enum SessionSelector: Sendable, Equatable {
    /// Every session of one user.
    case user(id: String)
    /// One session by its public id.
    case session(id: String)
    /// Every session of every user.
    case all
}

/// Filters for reading the audit log.
public struct AuditQuery: Sendable, Equatable {
    /// Only events about this email (as stored).
    public var email: String?
    /// Only events at or after this time.
    public var since: Date?
    /// At most this many events, newest first.
    public var limit: Int

    /// Creates a query.
    public init(email: String? = nil, since: Date? = nil, limit: Int = 100) {
        self.email = email
        self.since = since
        self.limit = limit
    }
}

/// The durable store of users, sessions and audit events (SPEC §1).
///
/// Every method that changes state commits its audit event in the same transaction,
/// before it returns (I6). Tokens are never passed in: only their hashes (I1).
public protocol AuthStore: Sendable {
    /// Creates an account and, when `session` is given, its first session.
    /// Throws ``AuthStoreError/emailTaken`` when the email has an account.
    func createUser(email: String, passwordHash: String, session: NewSession?, client: ClientInfo) async throws -> User

    /// The account for an email, with its password hash.
    func loginCandidate(email: String) async throws -> LoginCandidate?

    /// Records a successful login: the new session, the revocation of every session cookie the
    /// client came with (no fixation, even with several cookies of the name), an upgraded
    /// password hash if any, and the audit event.
    /// `bucket`'s failures are forgotten: a success starts its count afresh.
    func recordLogin(user: User, session: NewSession, replacing previous: [TokenHash], upgradedPasswordHash: String?, client: ClientInfo, clearing bucket: LoginBucket?) async throws

    /// Records a refused login; `email` is `nil` when what was typed is not an address. With
    /// `counting`, the failure is counted in its bucket in the same transaction, and the bucket
    /// locked when the count reaches `max_failures`; returns until when it is locked, if this
    /// failure locked it.
    @discardableResult
    func recordLoginFailure(email: String?, userId: String?, reason: String, client: ClientInfo, counting: LoginFailureCount?) async throws -> Date?

    /// Until when a bucket's logins are locked, or `nil`.
    func loginLock(_ bucket: LoginBucket, now: Date) async throws -> Date?

    /// Whether `address` began a session of the account (a login or its signup) at or after `since`.
    func hasLoggedIn(userId: String, from address: String, since: Date) async throws -> Bool

    /// Lifts every login lock and failure count of an email (`gatehouse user unlock`), audited;
    /// returns how many buckets were locked.
    func unlockLogins(email: String, client: ClientInfo) async throws -> Int

    /// Appends one event to the audit log (refusals that change nothing else).
    func audit(_ event: AuditEvent) async throws

    /// How many stored password hashes have each set of Argon2id parameters (hashes of another
    /// kind are not counted): what the dummy hash verified for unknown emails follows.
    func passwordHashParameters() async throws -> [Argon2Parameters: Int]

    /// Looks a session up by its token hash, enforcing expiry, idle timeout and disabled users.
    func validateSession(_ tokenHash: TokenHash, now: Date) async throws -> SessionValidation

    /// Revokes the session with this token hash; `true` if there was one.
    func logout(_ tokenHash: TokenHash, client: ClientInfo) async throws -> Bool

    /// Every user, oldest first.
    func listUsers() async throws -> [User]

    /// One user by email.
    func user(email: String) async throws -> User?

    /// Disables (revoking every session) or enables an account; `false` when it does not exist.
    func setDisabled(email: String, disabled: Bool, client: ClientInfo) async throws -> Bool

    /// Deletes an account and its sessions; `false` when it does not exist.
    func deleteUser(email: String, client: ClientInfo) async throws -> Bool

    /// Live sessions, newest first, optionally of one user.
    func listSessions(userId: String?) async throws -> [Session]

    /// Revokes sessions; returns how many.
    func revokeSessions(_ selector: SessionSelector, reason: String, client: ClientInfo) async throws -> Int

    /// Audit events, newest first.
    func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent]

    /// Deletes sessions past their expiry (and idle limit), auditing each; returns how many.
    func purgeExpiredSessions(now: Date) async throws -> Int

    /// Throws when the store cannot serve.
    func ping() async throws
}

extension AuthStore {
    /// ``recordLogin(user:session:replacing:upgradedPasswordHash:client:clearing:)`` with no failures to forget.
    public func recordLogin(user: User, session: NewSession, replacing previous: [TokenHash], upgradedPasswordHash: String?, client: ClientInfo) async throws {
        try await recordLogin(user: user, session: session, replacing: previous, upgradedPasswordHash: upgradedPasswordHash, client: client, clearing: nil)
    }

    /// ``recordLoginFailure(email:userId:reason:client:counting:)`` without counting.
    public func recordLoginFailure(email: String?, userId: String?, reason: String, client: ClientInfo) async throws {
        try await recordLoginFailure(email: email, userId: userId, reason: reason, client: client, counting: nil)
    }
}

/// A failed login to count towards `abuse.lockout`.
public struct LoginFailureCount: Sendable {
    /// Where it is counted.
    public var bucket: LoginBucket
    /// The lockout policy.
    public var lockout: LockoutConfiguration

    /// Creates a count.
    public init(bucket: LoginBucket, lockout: LockoutConfiguration) {
        self.bucket = bucket
        self.lockout = lockout
    }
}

/// A session about to be created: the hash of a fresh token and its times.
public struct NewSession: Sendable {
    /// SHA-256 of the token handed to the client.
    public var tokenHash: TokenHash
    /// Login time.
    public var createdAt: Date
    /// Absolute expiry.
    public var expiresAt: Date

    /// Creates a new session description.
    public init(tokenHash: TokenHash, createdAt: Date, expiresAt: Date) {
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// Domain answers a store gives as errors.
public enum AuthStoreError: Error, Sendable, Equatable {
    /// The email already has an account.
    case emailTaken
}

/// A revocation the Redis cache has yet to apply: one token hash, or every session of a user.
public struct CacheInvalidation: Sendable, Equatable {
    /// Outbox row id.
    public var id: Int64
    /// The revoked session's token hash.
    public var tokenHash: TokenHash?
    /// A user all of whose cached sessions are revoked.
    public var userId: String?

    /// Creates an invalidation.
    public init(id: Int64, tokenHash: TokenHash?, userId: String?) {
        self.id = id
        self.tokenHash = tokenHash
        self.userId = userId
    }
}
