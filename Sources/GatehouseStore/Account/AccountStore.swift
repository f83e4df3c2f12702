import Foundation
import GatehouseCore

/// The account lifecycle's writes (SPEC §2.4) on the source of truth, followed by what the
/// Redis cache must be told: the same outbox and tombstones as every other revocation (I3),
/// so a password change or reset on one instance is a revocation on all of them, Redis up or
/// down. Without Redis it is SQLite alone.
public struct AccountStore: Sendable {
    /// The source of truth.
    public let sqlite: SQLiteAuthStore
    /// The Redis cache in front of it, when configured.
    public let cache: CachedAuthStore?

    /// Creates the store of a composition.
    public init(sqlite: SQLiteAuthStore, cache: CachedAuthStore?) {
        self.sqlite = sqlite
        self.cache = cache
    }

    /// Tells the cache what a change did: revoked sessions tombstoned (their invalidations
    /// are in the outbox already, so a failure here is replayed), stale entries dropped.
    func apply(_ effects: CacheEffects) async {
        guard let cache else { return }
        if !effects.revoked.isEmpty { await cache.applyOwn(tokenHashes: effects.revoked) }
        await cache.dropEntries(users: effects.refreshed)
    }

    /// See ``SQLiteAuthStore/eraseUser(email:client:)``; the erased user's cached sessions
    /// are tombstoned like any other deletion's.
    public func eraseUser(email: String, client: ClientInfo) async throws -> Erasure? {
        guard let erasure = try await sqlite.eraseUser(email: email, client: client) else { return nil }
        if let cache { await cache.applyOwn(tokenHashes: erasure.effects.revoked, users: erasure.effects.refreshed) }
        return erasure
    }

    /// See ``SQLiteAuthStore/changePassword(user:passwordHash:session:client:)``; the new
    /// session is written through to Redis after the revocations.
    public func changePassword(user: User, passwordHash: String, session: NewSession, client: ClientInfo) async throws {
        let effects = try await sqlite.changePassword(user: user, passwordHash: passwordHash, session: session, client: client)
        await apply(effects)
        await cache?.writeThrough(user, session)
    }

    /// See ``SQLiteAuthStore/resetPassword(token:passwordHash:client:)``.
    public func resetPassword(token: TokenHash, passwordHash: String, client: ClientInfo) async throws -> User? {
        guard let (user, effects) = try await sqlite.resetPassword(token: token, passwordHash: passwordHash, client: client) else { return nil }
        await apply(effects)
        return user
    }

    /// See ``SQLiteAuthStore/verifyEmail(token:client:)``.
    public func verifyEmail(token: TokenHash, client: ClientInfo) async throws -> User? {
        guard let (user, effects) = try await sqlite.verifyEmail(token: token, client: client) else { return nil }
        await apply(effects)
        return user
    }

    /// See ``SQLiteAuthStore/markEmailVerified(email:client:)``.
    public func markEmailVerified(email: String, client: ClientInfo) async throws -> User? {
        guard let (user, effects) = try await sqlite.markEmailVerified(email: email, client: client) else { return nil }
        await apply(effects)
        return user
    }

    /// See ``SQLiteAuthStore/revokeOwnSession(userId:sessionId:client:)``; `false` when the
    /// session is not the user's.
    public func revokeOwnSession(userId: String, sessionId: String, client: ClientInfo) async throws -> Bool {
        guard let effects = try await sqlite.revokeOwnSession(userId: userId, sessionId: sessionId, client: client) else { return false }
        await apply(effects)
        return true
    }

    /// See ``SQLiteAuthStore/confirmTOTP(user:step:recoveryCodeHashes:client:)``.
    public func confirmTOTP(user: User, step: Int64, recoveryCodeHashes: [String], client: ClientInfo) async throws -> Bool {
        guard let effects = try await sqlite.confirmTOTP(user: user, step: step, recoveryCodeHashes: recoveryCodeHashes, client: client) else { return false }
        await apply(effects)
        return true
    }

    /// See ``SQLiteAuthStore/disableMFA(email:reason:client:)``.
    public func disableMFA(email: String, reason: String, client: ClientInfo) async throws -> User? {
        guard let (user, effects) = try await sqlite.disableMFA(email: email, reason: reason, client: client) else { return nil }
        await apply(effects)
        return user
    }
}
