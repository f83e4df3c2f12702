import Crypto
import Foundation
import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// ``AuthStore`` with Redis in front of SQLite (SPEC §1): the fast path for validation and
/// the coordination layer between instances.
///
/// - Sessions are written through on login (SQLite commits first) and read through on
///   validation (Redis hit answers; a miss reads SQLite and back-fills with `SET NX`).
/// - Revocations commit in SQLite together with an invalidation in the outbox table; the
///   request then writes its own tombstones, and the maintenance round applies whatever the
///   outbox still holds (another process's revocations, a backlog from an outage) and marks
///   it applied (I3). Applied invalidations are kept for ``replayWindow``.
/// - Redis is *trusted* (read at all) only after this instance has seen it answer, has
///   applied the outbox, and has replayed every invalidation of the last ``replayWindow``
///   (`redis.cache_ttl` and a margin: no entry written before a revocation can outlive
///   it). Any Redis failure, a lost connection included, makes it untrusted at once; until
///   the next successful round every validation reads SQLite. So a Redis that comes back
///   from an older state (a restart from a snapshot, a failover to a replica that missed
///   the tombstone, an AOF that lost its last second) is cleaned of every session revoked
///   since before any instance believes it again.
/// - No Redis error fails a request or clears a cookie, and no Redis call waits longer than
///   `redis.timeout` (I2).
public final class CachedAuthStore: AuthStore, Service {
    /// The source of truth.
    public let sqlite: SQLiteAuthStore
    /// The cache.
    public let redis: RedisClient
    /// Longest a session stays cached without a SQLite read.
    public let cacheTTL: Duration
    /// Tombstones live as long as a session can.
    public let sessionLifetime: Duration
    /// How often the outbox is replayed and Redis pinged.
    public let maintenanceInterval: Duration
    /// Writes and checks the authenticated entries.
    let entries: SessionCacheEntry

    private let logger: Logger
    /// Where lookups are counted (hit, miss, SQLite fallback).
    let metrics: GatehouseMetrics?
    /// Whether Redis is read, and how many times it has been distrusted (so that a replay that
    /// started before a failure cannot re-establish trust after it).
    /// `failure` is why the last maintenance round or connection failed, for diagnostics.
    private let trustedState = NIOLockedValueBox((trusted: false, epoch: 0, failure: String?.none))
    /// Maintenance rounds finished (trusting Redis or not), for ``firstRound(atMost:)``.
    private let rounds = NIOLockedValueBox(0)

    /// Maintenance rounds finished so far, and why Redis was last distrusted (if it was).
    var maintenanceState: (rounds: Int, lastFailure: String?) {
        (rounds.withLockedValue { $0 }, trustedState.withLockedValue { $0.failure })
    }
    /// The trust period for which the recent invalidations have been replayed.
    private let replayedEpoch = NIOLockedValueBox<Int?>(nil)

    /// Creates the cache; ``run()`` (a service) makes it trusted once Redis answers.
    public init(
        sqlite: SQLiteAuthStore, redis: RedisClient, entryKey: SymmetricKey, cacheTTL: Duration, sessionLifetime: Duration,
        maintenanceInterval: Duration = .milliseconds(250), metrics: GatehouseMetrics? = nil, logger: Logger
    ) {
        self.metrics = metrics
        self.sqlite = sqlite
        self.entries = SessionCacheEntry(key: entryKey)
        self.redis = redis
        self.cacheTTL = cacheTTL
        self.sessionLifetime = sessionLifetime
        self.maintenanceInterval = maintenanceInterval
        self.logger = logger
        // A connection that closes may come back to a different Redis state.
        redis.whenConnectionLost { [weak self] in self?.distrust("redis connection lost") }
    }

    /// How far back the invalidations replayed on (re)gaining trust go: the longest a cached
    /// entry lives (`redis.cache_ttl`, never beyond a session lifetime) and a minute for
    /// clocks that differ between instances and Redis.
    public var replayWindow: Duration { min(cacheTTL, sessionLifetime) + .seconds(60) }

    /// Whether validations currently read Redis.
    public var isTrusted: Bool { trustedState.withLockedValue { $0.trusted } }

    /// The current trust period while Redis is trusted, `nil` otherwise. It changes on every
    /// distrust, so anything read from Redis in an earlier period can be recognised as such.
    public var trustEpoch: Int? { trustedState.withLockedValue { $0.trusted ? $0.epoch : nil } }

    /// Until when (milliseconds since 1970) a validation of this session may be answered
    /// from memory: the session policy's bound with `cache_ttl`; `nil` when it must not be.
    public func answerableUntil(_ user: User, _ session: Session, nowMilliseconds: Int64) -> Int64? {
        sqlite.policy.answerableUntil(user, session, nowMilliseconds: nowMilliseconds, cacheTTL: cacheTTL)
    }

    // MARK: Validation

    /// What one `GET` of a session's key found.
    public enum CachedSessionReply: Sendable {
        /// A cached session.
        case entry(User, Session)
        /// A revocation's tombstone.
        case tombstone
        /// No key, or a value this version cannot read: SQLite answers.
        case absent

        /// The reply for a `GET` of `tokenHash`'s key, checked with `entries`; `nil` for
        /// anything but a string or null. An entry that fails its check is `absent`.
        init?(_ value: RESPValue, tokenHash: TokenHash, entries: SessionCacheEntry) {
            switch value {
            case .bulkString(let bytes):
                let text = String(decoding: bytes, as: UTF8.self)
                if text == SessionCacheEntry.tombstone {
                    self = .tombstone
                } else if let (user, session) = entries.decode(text, tokenHash: tokenHash) {
                    self = .entry(user, session)
                } else {
                    self = .absent
                }
            case .null:
                self = .absent
            default:
                return nil
            }
        }
    }

    public func validateSession(_ tokenHash: TokenHash, now: Date) async throws -> SessionValidation {
        var reply: CachedSessionReply?
        if isTrusted {
            do {
                reply = CachedSessionReply(try await redis.send("GET", CacheKeys.session(tokenHash)), tokenHash: tokenHash, entries: entries)
                if reply == nil { distrust("unexpected reply to GET") }
            } catch let error as RedisError {
                distrust("\(error)")
            }
        }
        return try await validateSession(tokenHash, after: reply, now: now)
    }

    /// The rest of a validation once Redis's answer is known (`nil`: Redis was not asked, or
    /// its answer cannot be used): a cached entry is judged by the session policy, anything
    /// else is read from SQLite and back-filled. The event-loop fast path calls this with the
    /// reply of its own `GET`, so a session costs one Redis round trip on either path.
    public func validateSession(_ tokenHash: TokenHash, after reply: CachedSessionReply?, now: Date) async throws -> SessionValidation {
        let key = CacheKeys.session(tokenHash)
        metrics?.lookup(Self.lookupResult(of: reply))
        switch reply {
        case .tombstone:
            return .unknown
        case .entry(let user, let session):
            switch sqlite.policy.verdict(user, session, nowMilliseconds: Timestamp.milliseconds(now)) {
            case .userDisabled:
                return .userDisabled
            case .live(let writeDue):
                if writeDue { try await touch(user, session, key: key, now: now) }
                return .valid(user, session)
            case .expired:
                // SQLite deletes and audits it; the entry goes too.
                Task { _ = try? await redis.send("DEL", key) }
            }
        case .absent, nil:
            break
        }
        let answer = try await sqlite.validateSession(tokenHash, now: now)
        if case .valid(let user, let session) = answer, isTrusted {
            // Not awaited: the request has already spent its Redis budget on the GET (I2).
            Task { await cache(user, session, onlyIfAbsent: true) }
        }
        return answer
    }

    /// How a lookup that saw `reply` counts: Redis answered (an entry or a tombstone), had
    /// nothing, or was not asked.
    static func lookupResult(of reply: CachedSessionReply?) -> GatehouseMetrics.CacheResult {
        switch reply {
        case .entry, .tombstone: .hit
        case .absent: .miss
        case nil: .sqliteFallback
        }
    }

    /// Writes a due `last_seen_at` and refreshes the cached entry to match.
    private func touch(_ user: User, _ session: Session, key: String, now: Date) async throws {
        try await sqlite.touchSession(id: session.id, now: now)
        var touched = session
        touched.lastSeenAt = now
        // Atomic and tombstone-aware: a revocation that landed since the GET must win
        // (a plain SET XX would bring the session back under the tombstone's TTL).
        let value = entries.encode(user, touched)
        Task { _ = try? await redis.send("EVAL", Self.refreshScript, "1", key, value, SessionCacheEntry.tombstone) }
    }

    /// Writes a session to Redis (write-through or back-fill) with its user index.
    private func cache(_ user: User, _ session: Session, onlyIfAbsent: Bool) async {
        let remaining = Timestamp.milliseconds(session.expiresAt) - Timestamp.milliseconds(Date())
        let ttl = min(remaining, cacheTTL.milliseconds)
        guard ttl > 0 else { return }
        var set = ["SET", CacheKeys.session(session.tokenHash), entries.encode(user, session), "PX", String(ttl)]
        if onlyIfAbsent { set.append("NX") }
        let userKey = CacheKeys.user(user.id)
        do {
            _ = try await redis.pipeline([
                set, ["SADD", userKey, session.tokenHash.hex], ["PEXPIRE", userKey, String(sessionLifetime.milliseconds)],
            ])
        } catch {
            distrust("\(error)")
        }
    }

    // MARK: Writes: SQLite first, then Redis

    public func createUser(email: String, passwordHash: String, session: NewSession?, client: ClientInfo) async throws -> User {
        let user = try await sqlite.createUser(email: email, passwordHash: passwordHash, session: session, client: client)
        if let session { await writeThrough(user, session) }
        return user
    }

    public func recordLogin(user: User, session: NewSession, replacing previous: [TokenHash], upgradedPasswordHash: String?, client: ClientInfo, clearing bucket: LoginBucket?) async throws {
        try await sqlite.recordLogin(user: user, session: session, replacing: previous, upgradedPasswordHash: upgradedPasswordHash, client: client, clearing: bucket)
        if !previous.isEmpty { await applyOwn(tokenHashes: previous.map(\.hex)) }
        await writeThrough(user, session)
    }

    func writeThrough(_ user: User, _ session: NewSession) async {
        guard isTrusted else { return }
        // The id is not known here; read the row back so the entry matches SQLite exactly.
        // NX: a new token has no entry, and a tombstone written meanwhile must stay.
        if case .valid(let stored, let row) = try? await sqlite.validateSession(session.tokenHash, now: session.createdAt) {
            await cache(stored, row, onlyIfAbsent: true)
        }
    }

    /// Replaces a cached entry's value (keeping its TTL) unless it is missing or a tombstone.
    public static let refreshScript = """
        local current = redis.call('GET', KEYS[1])
        if current and current ~= ARGV[2] then redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') end
        return 0
        """

    public func logout(_ tokenHash: TokenHash, client: ClientInfo) async throws -> Bool {
        let revoked = try await sqlite.logout(tokenHash, client: client)
        if revoked { await applyOwn(tokenHashes: [tokenHash.hex]) }
        return revoked
    }

    public func setDisabled(email: String, disabled: Bool, client: ClientInfo) async throws -> Bool {
        let found = try await sqlite.setDisabled(email: email, disabled: disabled, client: client)
        if found, disabled, let user = try await sqlite.user(email: email) { await applyOwn(users: [user.id]) }
        return found
    }

    public func deleteUser(email: String, client: ClientInfo) async throws -> Bool {
        let user = try await sqlite.user(email: email)
        let found = try await sqlite.deleteUser(email: email, client: client)
        if found, let user { await applyOwn(users: [user.id]) }
        return found
    }

    public func revokeSessions(_ selector: SessionSelector, reason: String, client: ClientInfo) async throws -> Int {
        let count = try await sqlite.revokeSessions(selector, reason: reason, client: client)
        switch selector {
        case .user(let id): await applyOwn(users: [id])
        // The token hashes are in the outbox only: an administrator's revocation applies it
        // (what it holds beyond this one is applied a moment sooner, no harm).
        case .session, .all: await applyInvalidations()
        }
        return count
    }

    // MARK: Reads and writes that do not involve the cache

    public func loginCandidate(email: String) async throws -> LoginCandidate? { try await sqlite.loginCandidate(email: email) }
    public func recordLoginFailure(email: String?, userId: String?, reason: String, client: ClientInfo, counting: LoginFailureCount?) async throws -> Date? {
        try await sqlite.recordLoginFailure(email: email, userId: userId, reason: reason, client: client, counting: counting)
    }
    public func loginLock(_ bucket: LoginBucket, now: Date) async throws -> Date? { try await sqlite.loginLock(bucket, now: now) }
    public func hasLoggedIn(userId: String, from address: String, since: Date) async throws -> Bool {
        try await sqlite.hasLoggedIn(userId: userId, from: address, since: since)
    }
    public func unlockLogins(email: String, client: ClientInfo) async throws -> Int { try await sqlite.unlockLogins(email: email, client: client) }
    public func audit(_ event: AuditEvent) async throws { try await sqlite.audit(event) }
    public func passwordHashParameters() async throws -> [Argon2Parameters: Int] { try await sqlite.passwordHashParameters() }
    public func listUsers() async throws -> [User] { try await sqlite.listUsers() }
    public func user(email: String) async throws -> User? { try await sqlite.user(email: email) }
    public func listSessions(userId: String?) async throws -> [Session] { try await sqlite.listSessions(userId: userId) }
    public func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent] { try await sqlite.auditEvents(query) }
    public func purgeExpiredSessions(now: Date) async throws -> Int { try await sqlite.purgeExpiredSessions(now: now) }
    public func ping() async throws { try await sqlite.ping() }

    // MARK: The outbox (I3)

    /// Writes tombstones for a request's own revocations: the sessions it revoked, or every
    /// session of the users it revoked. The outbox rows stay pending and are applied again
    /// by the maintenance round (tombstones are idempotent), so a failure here loses nothing:
    /// it only distrusts Redis until that round has succeeded. Tried whether or not Redis is
    /// trusted (trust is about reading it): other instances may be reading it now.
    func applyOwn(tokenHashes: [String] = [], users: [String] = []) async {
        do {
            try await tombstone(tokenHashes: tokenHashes, users: users)
            // Redis queues the invalidation pushes for the in-process caches while it writes
            // the tombstones, and sends them at the end of that pass, possibly after this
            // reply. A command sent only now is answered in a later pass: when its reply
            // arrives, every instance's push is on its way before the revocation returns, so
            // a request that follows the revocation finds it applied (I3).
            _ = try await redis.send("PING")
        } catch {
            distrust("invalidations not applied: \(error)")
        }
    }

    /// Drops the cached entries of the users' sessions (not their tombstones) after a change of
    /// the user that every entry carries (email verified, MFA on or off): the next validation
    /// reads SQLite and caches the user as it is now; the in-process caches are told by Redis.
    /// A failure leaves the old entries for at most `redis.cache_ttl`, and they only ever
    /// say less than the truth (unverified, MFA off), so the change is not retried.
    func dropEntries(users: [String]) async {
        guard !users.isEmpty else { return }
        do {
            let members = try await redis.pipeline(users.map { ["SMEMBERS", CacheKeys.user($0)] })
            var keys: [String] = []
            for case .array(let items) in members { keys += items.compactMap(\.string).map { CacheKeys.session(hex: $0) } }
            guard !keys.isEmpty else { return }
            // The PING after it, as in ``applyOwn(tokenHashes:users:)``: its reply comes after the
            // in-process caches' invalidation pushes.
            _ = try await redis.pipeline([["EVAL", Self.dropScript, String(keys.count)] + keys + [SessionCacheEntry.tombstone], ["PING"]])
        } catch {
            logger.warning("cached sessions not refreshed; they expire within redis.cache_ttl", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes each key unless it holds a tombstone.
    static let dropScript = """
        for _, key in ipairs(KEYS) do
          if redis.call('GET', key) ~= ARGV[1] then redis.call('DEL', key) end
        end
        return 0
        """

    /// Tombstones the sessions and every cached session of the users.
    private func tombstone(tokenHashes: [String], users: [String]) async throws {
        let lifetime = String(sessionLifetime.milliseconds)
        var tokenHashes = tokenHashes
        if !users.isEmpty {
            // Every session a user has in the cache, including ones SQLite no longer knows.
            let members = try await redis.pipeline(users.map { ["SMEMBERS", CacheKeys.user($0)] })
            for case .array(let items) in members {
                tokenHashes += items.compactMap(\.string)
            }
        }
        var commands = tokenHashes.map { ["SET", CacheKeys.session(hex: $0), SessionCacheEntry.tombstone, "PX", lifetime] }
        commands += users.map { ["DEL", CacheKeys.user($0)] }
        guard !commands.isEmpty else { return }
        let replies = try await redis.pipeline(commands)
        if let failure = replies.first(where: { if case .error = $0 { true } else { false } }) {
            throw RedisError.server("\(failure)")
        }
    }

    private func tombstone(_ invalidations: [CacheInvalidation]) async throws {
        try await tombstone(tokenHashes: invalidations.compactMap { $0.tokenHash?.hex }, users: invalidations.compactMap(\.userId))
    }

    /// Applies pending invalidations to Redis as tombstones and marks them applied.
    /// Returns `true` when none is pending afterwards. Failures leave rows for later.
    @discardableResult
    public func applyInvalidations() async -> Bool {
        do {
            while true {
                let pending = try await sqlite.pendingInvalidations(limit: 256)
                guard !pending.isEmpty else { return true }
                try await tombstone(pending)
                try await sqlite.markInvalidationsApplied(pending.map(\.id), now: Date())
                if pending.count < 256 { return true }
            }
        } catch {
            distrust("invalidations not applied: \(error)")
            return false
        }
    }

    /// Applies again every invalidation of the last ``replayWindow``, applied or not, once per
    /// trust period (`epoch`): Redis may have lost the tombstones since. Returns whether the
    /// replay is done for `epoch`.
    func replayRecent(forEpoch epoch: Int) async -> Bool {
        if replayedEpoch.withLockedValue({ $0 }) == epoch { return true }
        do {
            let since = Timestamp.milliseconds(Date()) - replayWindow.milliseconds
            var after: Int64 = 0
            var replayed = 0
            while true {
                let batch = try await sqlite.recentInvalidations(since: since, after: after, limit: 256)
                guard let last = batch.last else { break }
                try await tombstone(batch)
                replayed += batch.count
                after = last.id
                if batch.count < 256 { break }
            }
            replayedEpoch.withLockedValue { $0 = epoch }
            if replayed > 0 { logger.info("recent revocations replayed into redis", metadata: ["count": "\(replayed)"]) }
            return true
        } catch {
            distrust("recent invalidations not replayed: \(error)")
            return false
        }
    }

    /// Pings Redis and applies the outbox every ``maintenanceInterval`` (and, once per trust
    /// period, replays the recent invalidations); trusts Redis only while all succeed.
    public func run() async throws {
        // The connections open as the client's service starts: the first round waits for one,
        // at most a connect timeout, so that it does not fail only for having come first.
        await redis.awaitConnection(atMost: .seconds(1))
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let epoch = trustedState.withLockedValue { $0.epoch }
                guard case .simpleString("PONG") = try await redis.send("PING") else { throw RedisError.protocolError }
                if await applyInvalidations(), await replayRecent(forEpoch: epoch) { trust(ifEpoch: epoch) }
            } catch {
                distrust("\(error)")
            }
            rounds.withLockedValue { $0 += 1 }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.maintenanceInterval) }
        }
    }

    /// Waits until the first maintenance round has finished (Redis pinged and the outbox
    /// replayed, or either failing), at most `limit`; returns whether Redis is trusted. The
    /// server starts listening after this, so with Redis reachable its first answers already
    /// read Redis, and with Redis down it serves from SQLite at once.
    public func firstRound(atMost limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while rounds.withLockedValue({ $0 }) == 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return isTrusted
    }

    private func trust(ifEpoch epoch: Int) {
        let changed = trustedState.withLockedValue { state -> Bool in
            guard state.epoch == epoch, !state.trusted else { return false }
            state.trusted = true
            return true
        }
        if changed { logger.notice("redis cache available", metadata: ["redis": "\(redis.endpoint.redacted)"]) }
    }

    /// Stops reading Redis until the next successful ping and outbox replay; also called by
    /// the in-process cache when its own Redis connections fail, so that a Redis that comes
    /// back (possibly from an old snapshot) is believed again only after the replay.
    public func distrust(_ reason: String) {
        let changed = trustedState.withLockedValue { state -> Bool in
            defer {
                state.trusted = false
                state.epoch += 1
                state.failure = reason
            }
            return state.trusted
        }
        if changed {
            logger.warning("redis cache unavailable; validating against SQLite until it is back and the outbox is replayed", metadata: ["reason": "\(reason)"])
        }
    }
}
