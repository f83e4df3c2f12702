import Crypto
import Foundation
import GatehouseCore

/// Gatehouse's Redis key schema, in one place: every key and prefix any connection uses.
/// Keys carry the SHA-256 of a token, never the token (I1).
enum CacheKeys {
    /// The prefix of every session key; the in-process caches track exactly these keys.
    static let sessionPrefix = "gatehouse:session:"
    /// The prefix of the per-user index sets.
    static let userPrefix = "gatehouse:user:"
    /// Redis's channel of client-side-caching invalidations (RESP2, `REDIRECT`).
    static let invalidationChannel = "__redis__:invalidate"

    /// The prefix of rate-limit counters (never tracked by the in-process caches).
    static let ratePrefix = "gatehouse:rate:"

    /// The counter of one limit for one subject (an IP or an account), by the subject's
    /// SHA-256: no address or email is readable in Redis.
    static func rate(_ limit: String, subject: String) -> String {
        ratePrefix + limit + ":" + SHA256.hash(data: Array(subject.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// The key of a session.
    static func session(_ tokenHash: TokenHash) -> String { session(hex: tokenHash.hex) }

    /// The key of a session by its token hash in hex.
    static func session(hex: some StringProtocol) -> String { sessionPrefix + hex }

    /// The set of a user's cached token hashes.
    static func user(_ userId: String) -> String { userPrefix + userId }
}
