import Foundation
import GatehouseCore
import GatehouseStore
import Logging

/// The abuse protections of SPEC §2.4 as the auth endpoints use them: the `abuse.*` rate
/// limits (counted by ``RateLimiter``), the login lockout's buckets (``LoginBucket``, counted
/// in the store) and the audit of refusals. Every check here runs before any Argon2 work.
struct AbuseGuard: Sendable {
    let limits: AbuseConfiguration
    let limiter: RateLimiter
    let store: any AuthStore

    /// Counts an attempt against `checks` (`nil` ones are off); throws 429 `rate_limited` past
    /// one, auditing the first refusal of each window (a flood of refusals writes one row).
    func admit(_ checks: [RateCheck?], email: String?, client: ClientInfo) async throws {
        let verdict = await limiter.check(checks.compactMap { $0 })
        guard case .limited(let name, let retryAfter, let first) = verdict else { return }
        if first {
            try await store.audit(AuditEvent(at: Date(), kind: .rateLimited, outcome: .failure, reason: name, email: email, ip: client.ip, userAgent: client.userAgent))
        }
        throw AuthError.rateLimited(retryAfter: retryAfter)
    }

    /// The bucket a login attempt for `email` is counted in: the client's own when it logged
    /// in to the account within ``LoginBucket/knownAddressMemory``, else the account's shared one.
    func bucket(email: String, candidate: LoginCandidate?, client: ClientInfo) async throws -> LoginBucket {
        guard let candidate, limits.loginPerAccount != nil || limits.lockout.maxFailures > 0 else { return LoginBucket(email: email, knownAddress: nil) }
        let since = Date().addingTimeInterval(-LoginBucket.knownAddressMemory.seconds)
        let known = try await store.hasLoggedIn(userId: candidate.user.id, from: client.ip, since: since)
        return LoginBucket(email: email, knownAddress: known ? client.ip : nil)
    }

    /// The lockout count a failed login adds to, or `nil` when the lockout is off.
    func failureCount(_ bucket: LoginBucket?) -> LoginFailureCount? {
        guard let bucket, limits.lockout.maxFailures > 0 else { return nil }
        return LoginFailureCount(bucket: bucket, lockout: limits.lockout)
    }

    /// Whether `bucket`'s logins are locked now.
    func isLocked(_ bucket: LoginBucket?) async throws -> Bool {
        guard let bucket, limits.lockout.maxFailures > 0 else { return false }
        return try await store.loginLock(bucket, now: Date()) != nil
    }
}
