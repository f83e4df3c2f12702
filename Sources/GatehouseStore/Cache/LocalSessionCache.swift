import Foundation
import GatehouseCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A verify answer that may be given from memory, and until when.
public struct CachedIdentity: Sendable {
    /// Whose session it is.
    public let identity: Identity
    /// Milliseconds since 1970 after which the stores must be asked again (expiry, idle
    /// limit, a due `last_seen_at` write, or `redis.cache_ttl`, whichever comes first).
    public let usableUntil: Int64
    /// The Redis trust period it was read in (see ``CachedAuthStore/trustEpoch``).
    let trustEpoch: Int
}

/// Sessions validated through Redis, cached in process: one cache per event loop, so that
/// the event-loop fast path (verify, authenticated proxying) answers without a lock, a task or a
/// round trip (SPEC §3).
///
/// Kept correct by Redis client-side caching (I3). Each loop has two connections of its own:
/// an *invalidation* connection subscribed to `__redis__:invalidate`, and a *data* connection
/// with `CLIENT TRACKING on REDIRECT <invalidation> BCAST PREFIX gatehouse:session:`, so that
/// every change to a session key anywhere (a tombstone, a refresh, an expiry, a flush) is
/// pushed to every instance's every loop. The cache answers only while
/// - both connections are up (either one closing clears the cache and switches it off until
///   both are re-established),
/// - a PING on the invalidation connection, sent less than `redis.timeout` ago, was answered:
///   pushes and replies share that connection in order, so a pong means every invalidation
///   Redis produced in an earlier pass of its event loop has arrived. A stalled or partitioned
///   Redis switches the cache off no later than a revoking instance gives up writing its
///   tombstone, and an invalidation delayed on the network can be outrun for at most
///   `redis.timeout` after Redis applied the revocation;
/// - the instance trusts Redis, in the same trust period the entry was read in (a distrust
///   empties it in effect: see ``CachedAuthStore``). The cache's own Redis failures (a
///   connection lost, a PING or GET unanswered) distrust Redis for the whole instance, so
///   nothing is read from a Redis that came back until the outbox has been replayed into it.
public final class LocalSessionCache: Service, Sendable {
    /// The Redis-backed store whose trust gate the cache follows.
    public let store: CachedAuthStore
    private let caches: [ObjectIdentifier: LoopSessionCache]

    /// One cache per event loop of `group`, each holding at most `capacity` sessions: a
    /// client's connections land on any loop, so each loop must be able to hold every live
    /// session (a share of `capacity` per loop made a rotation over all of them miss always).
    public init(store: CachedAuthStore, group: any EventLoopGroup, capacity: Int, logger: Logger) {
        self.store = store
        let loops = Array(group.makeIterator())
        var caches: [ObjectIdentifier: LoopSessionCache] = [:]
        for loop in loops {
            caches[ObjectIdentifier(loop)] = LoopSessionCache(
                eventLoop: loop, store: store, capacity: max(1, capacity), logger: logger
            )
        }
        self.caches = caches
    }

    /// The cache of `eventLoop`, if it belongs to the group.
    public func cache(for eventLoop: any EventLoop) -> LoopSessionCache? {
        caches[ObjectIdentifier(eventLoop)]
    }

    /// Keeps every loop's connections up until graceful shutdown, then closes them.
    public func run() async throws {
        for cache in caches.values {
            cache.eventLoop.execute { cache.start() }
        }
        try? await gracefulShutdown()
        for cache in caches.values {
            try? await cache.eventLoop.submit { cache.stop() }.get()
        }
    }
}

/// One event loop's share of ``LocalSessionCache``. Everything but `init` runs on `eventLoop`.
public final class LoopSessionCache: @unchecked Sendable {
    /// The loop that owns this cache, its connections and every call into it.
    public let eventLoop: any EventLoop

    /// The store this loop's cache follows (and finishes lookups with).
    public let store: CachedAuthStore
    private let capacity: Int
    private let logger: Logger
    private let timeout: TimeAmount

    private enum Link {
        case down(retryAt: NIODeadline)
        case connecting
        case up(data: any Channel, invalidation: any Channel)
    }

    /// A GET in flight; poisoned when an invalidation for its key arrives before its reply.
    private final class Load {
        var poisoned = false
        let promise: EventLoopPromise<Loaded>
        init(promise: EventLoopPromise<Loaded>) { self.promise = promise }
    }

    /// What ``load(_:nowMilliseconds:)`` found.
    public enum Loaded: Sendable {
        /// A live session, now cached: answer.
        case identity(CachedIdentity)
        /// The stores must answer, given this reply of Redis (`nil`: none that may be used,
        /// as after an error, a timeout or an invalidation that overtook the reply).
        case stores(CachedAuthStore.CachedSessionReply?)
    }

    private var entries: [String: CachedIdentity] = [:]
    /// Keys in insertion order, for eviction (may hold keys no longer in `entries`).
    private var order = CircularBuffer<String>()
    private var loads: [String: Load] = [:]
    private var link = Link.down(retryAt: .uptimeNanoseconds(0))
    private var backoff = TimeAmount.milliseconds(50)
    /// Bumped whenever the link goes down, so callbacks from an older link change nothing.
    private var generation = 0
    /// Hits are allowed until then (see the lease in ``LocalSessionCache``).
    private var leaseUntil = NIODeadline.uptimeNanoseconds(0)
    private var pingInFlight = false
    private var ticker: RepeatedTask?
    private var connecting: Task<Void, Never>?

    init(eventLoop: any EventLoop, store: CachedAuthStore, capacity: Int, logger: Logger) {
        self.eventLoop = eventLoop
        self.store = store
        self.capacity = capacity
        self.logger = logger
        self.timeout = store.redis.requestTimeout
    }

    // MARK: Lookups (on the loop)

    /// The identity for a token hash, if it may be answered from memory right now.
    public func lookup(_ tokenHash: TokenHash, nowMilliseconds: Int64) -> CachedIdentity? {
        eventLoop.preconditionInEventLoop()
        guard let identity = entries[tokenHash.hex] else { return nil }
        guard isServing, identity.trustEpoch == store.trustEpoch, nowMilliseconds < identity.usableUntil else {
            entries.removeValue(forKey: tokenHash.hex)
            return nil
        }
        return identity
    }

    /// Whether hits may be answered: links up, lease current.
    public var isServing: Bool {
        guard case .up = link else { return false }
        return NIODeadline.now() < leaseUntil
    }

    /// Whether ``load(_:nowMilliseconds:)`` can ask Redis.
    public var canLoad: Bool {
        guard case .up = link else { return false }
        return store.trustEpoch != nil
    }

    /// Reads a session from Redis on this loop's tracked connection, and caches it when it
    /// is a live session that may be answered from memory. Anything else (a tombstone, a
    /// miss, a write due, a disabled user) is for ``CachedAuthStore/validateSession(_:after:now:)``
    /// with the reply, so that no second GET is spent.
    public func load(_ tokenHash: TokenHash, nowMilliseconds: Int64) -> EventLoopFuture<Loaded> {
        eventLoop.preconditionInEventLoop()
        guard case .up(let data, _) = link, let epoch = store.trustEpoch else {
            return eventLoop.makeSucceededFuture(.stores(nil))
        }
        let key = tokenHash.hex
        if let running = loads[key] { return running.promise.futureResult }
        let load = Load(promise: eventLoop.makePromise())
        loads[key] = load
        let request = RedisRequest(arguments: [Array("GET".utf8), Array(CacheKeys.session(tokenHash).utf8)], timeout: timeout, promise: eventLoop.makePromise())
        let generation = self.generation
        request.promise.futureResult.assumeIsolated().whenComplete { result in
            if self.loads[key] === load { self.loads.removeValue(forKey: key) }
            var reply: CachedAuthStore.CachedSessionReply?
            switch result {
            case .success(let value):
                reply = CachedAuthStore.CachedSessionReply(value, tokenHash: tokenHash, entries: self.store.entries)
                if reply == nil { self.store.distrust("in-process cache: unexpected reply to GET") }
            case .failure(let error):
                // Also keeps the stores from spending a second Redis timeout (I2).
                self.store.distrust("in-process cache: GET failed: \(error)")
            }
            // An invalidation since the GET was sent, a new link or a new trust period: the
            // value may already be stale, so it is neither kept nor answered.
            guard !load.poisoned, generation == self.generation, epoch == self.store.trustEpoch else {
                load.promise.succeed(.stores(nil))
                return
            }
            guard case .entry(let user, let session) = reply,
                let until = self.store.answerableUntil(user, session, nowMilliseconds: nowMilliseconds), until > nowMilliseconds
            else {
                load.promise.succeed(.stores(reply))
                return
            }
            let identity = CachedIdentity(identity: user.identity, usableUntil: until, trustEpoch: epoch)
            self.insert(key, identity)
            load.promise.succeed(.identity(identity))
        }
        RedisClient.write([request], on: data)
        return load.promise.futureResult
    }

    /// Caches an identity; when full, the oldest insertion goes first. `Dictionary` has no
    /// cheap way to drop "some" entry (removing at `startIndex` scans ever more empty buckets),
    /// so insertion order is kept beside it; keys dropped meanwhile are skipped.
    private func insert(_ key: String, _ identity: CachedIdentity) {
        if entries[key] == nil {
            while entries.count >= capacity, let oldest = order.popFirst() {
                entries.removeValue(forKey: oldest)
            }
            order.append(key)
            if order.count > 2 * capacity {
                // Keys removed by invalidations and expiry pile up: start the order afresh.
                order = CircularBuffer(entries.keys)
            }
        }
        entries[key] = identity
    }

    // MARK: Invalidation

    /// A message on `__redis__:invalidate`: the keys that changed, or null for a flush.
    private func invalidated(_ message: RESPValue) {
        guard case .array(let parts) = message, parts.count == 3 else { return }
        guard case .array(let keys) = parts[2] else {
            forgetAll()
            return
        }
        let prefix = CacheKeys.sessionPrefix
        for case let key? in keys.map(\.string) where key.hasPrefix(prefix) {
            let hash = String(key.dropFirst(prefix.count))
            entries.removeValue(forKey: hash)
            loads[hash]?.poisoned = true
        }
    }

    private func forgetAll() {
        entries.removeAll()
        order.removeAll()
        for load in loads.values { load.poisoned = true }
    }

    // MARK: The link

    func start() {
        ticker = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(timeout.nanoseconds / 4)) { _ in
            self.tick()
        }
    }

    func stop() {
        ticker?.cancel()
        ticker = nil
        connecting?.cancel()
        connecting = nil
        takeDown(reason: nil)
        link = .down(retryAt: .distantFuture)
    }

    /// Renews the lease while up; reconnects with backoff while down.
    private func tick() {
        switch link {
        case .up(_, let invalidation):
            guard !pingInFlight else { return }
            pingInFlight = true
            let sentAt = NIODeadline.now()
            let generation = self.generation
            let request = RedisRequest(arguments: [Array("PING".utf8)], timeout: timeout, promise: eventLoop.makePromise())
            request.promise.futureResult.assumeIsolated().whenComplete { result in
                guard generation == self.generation else { return }
                self.pingInFlight = false
                if case .success(.array(let items)) = result, items.first?.string == "pong" {
                    self.leaseUntil = sentAt + self.timeout
                } else if case .failure(RedisError.timeout) = result {
                    // No lease until a later PING is answered in time.
                    self.store.distrust("in-process cache: PING unanswered within the timeout")
                } else {
                    self.takeDown(reason: "unexpected reply to PING")
                }
            }
            RedisClient.write([request], on: invalidation)
        case .down(let retryAt):
            guard NIODeadline.now() >= retryAt else { return }
            link = .connecting
            let generation = self.generation
            connecting = Task { await self.connect(generation: generation) }
        case .connecting:
            break
        }
    }

    private func connect(generation: Int) async {
        var opened: [any Channel] = []
        do {
            let endpoint = store.redis.endpoint
            let hungAfter = store.redis.hungAfter
            let invalidation = try await RedisClient.openConnection(to: endpoint, on: eventLoop) {
                RedisConnectionHandler(hungAfter: hungAfter) { message in self.invalidated(message) }
            }
            opened.append(invalidation)
            guard case .integer(let id) = try await RedisClient.exchange([["CLIENT", "ID"]], on: invalidation, timeout: .seconds(1))[0] else {
                throw RedisError.server("CLIENT ID: unexpected reply")
            }
            guard case .array(let subscribed) = try await RedisClient.exchange([["SUBSCRIBE", CacheKeys.invalidationChannel]], on: invalidation, timeout: .seconds(1))[0],
                subscribed.first?.string == "subscribe"
            else { throw RedisError.server("SUBSCRIBE: unexpected reply") }
            let data = try await RedisClient.openConnection(to: endpoint, on: eventLoop) { RedisConnectionHandler(hungAfter: hungAfter) }
            opened.append(data)
            let tracking = try await RedisClient.exchange(
                [["CLIENT", "TRACKING", "on", "REDIRECT", String(id), "BCAST", "PREFIX", CacheKeys.sessionPrefix]], on: data, timeout: .seconds(1)
            )[0]
            guard case .simpleString("OK") = tracking else { throw RedisError.server("CLIENT TRACKING: \(tracking)") }
            try await eventLoop.submit { self.linkUp(data: data, invalidation: invalidation, generation: generation) }.get()
        } catch {
            for channel in opened { try? await channel.close() }
            eventLoop.execute { self.connectFailed(generation: generation, error: error) }
        }
    }

    private func linkUp(data: any Channel, invalidation: any Channel, generation: Int) {
        guard generation == self.generation, case .connecting = link else {
            data.close(promise: nil)
            invalidation.close(promise: nil)
            return
        }
        link = .up(data: data, invalidation: invalidation)
        backoff = .milliseconds(50)
        pingInFlight = false
        for channel in [data, invalidation] {
            channel.closeFuture.assumeIsolated().whenComplete { _ in
                guard generation == self.generation else { return }
                self.takeDown(reason: "redis connection closed")
            }
        }
        logger.debug("local session cache on", metadata: ["redis": "\(store.redis.endpoint.redacted)"])
    }

    private func connectFailed(generation: Int, error: any Error) {
        guard generation == self.generation, case .connecting = link else { return }
        link = .down(retryAt: .now() + backoff)
        backoff = min(backoff * 2, .seconds(2))
        logger.debug("local session cache: redis connect failed", metadata: ["error": "\(error)"])
    }

    /// Clears the cache and closes both connections; it serves nothing until both are back.
    private func takeDown(reason: String?) {
        generation += 1
        forgetAll()
        loads.removeAll()
        leaseUntil = .uptimeNanoseconds(0)
        pingInFlight = false
        if case .up(let data, let invalidation) = link {
            data.close(promise: nil)
            invalidation.close(promise: nil)
            if let reason {
                logger.debug("local session cache off", metadata: ["reason": "\(reason)"])
                store.distrust("in-process cache: \(reason)")
            }
        }
        link = .down(retryAt: .now() + backoff)
    }
}
