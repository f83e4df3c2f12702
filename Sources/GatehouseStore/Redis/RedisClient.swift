import GatehouseCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A Redis client on SwiftNIO sockets with hiredis's protocol code (SPEC I2, I4).
///
/// Keeps `connections` connections and pipelines commands on them round-robin, so that one
/// slow reply does not hold up the others. Nothing here blocks a thread: sockets are NIO's,
/// and callers await replies. Every command has a deadline (`redis.timeout`); repeated
/// failures open a circuit breaker that makes calls fail at once until a probe succeeds.
/// Lost connections are re-established in the background, with backoff, by ``run()``.
public final class RedisClient: Service, Sendable {
    /// Where Redis is.
    public let endpoint: RedisEndpoint
    /// Deadline of every command.
    public let timeout: Duration
    /// Connections kept open.
    public let connectionCount: Int

    private let group: any EventLoopGroup
    private let logger: Logger
    private let state: NIOLockedValueBox<State>

    private struct Slot {
        var channel: (any Channel)?
        var connecting = false
        var retryAt = ContinuousClock.now
        var backoff: Duration = .milliseconds(50)
    }

    private struct State {
        var slots: [Slot]
        var next = 0
        var breaker = CircuitBreaker(threshold: 5, coolDown: .seconds(1))
        var shuttingDown = false
        var connectionLost: (@Sendable () -> Void)?
    }

    /// Creates a client; connections are opened by ``run()``.
    public init(endpoint: RedisEndpoint, timeout: Duration, connections: Int = 2, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        self.endpoint = endpoint
        self.timeout = timeout
        self.connectionCount = connections
        self.group = group
        self.logger = logger
        self.state = NIOLockedValueBox(State(slots: Array(repeating: Slot(), count: connections)))
    }

    /// Calls `body` whenever an open connection closes (not at shutdown), before anything is
    /// reconnected: what Redis holds may have changed behind the client's back (a restart
    /// from a snapshot, a failover), and whoever trusted it must know.
    public func whenConnectionLost(_ body: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.connectionLost = body }
    }

    /// Sends one command and awaits its reply. Redis error replies are returned, not thrown;
    /// thrown are only ``RedisError``s that mean "no answer".
    public func send(_ arguments: String...) async throws -> RESPValue {
        try await pipeline([arguments])[0]
    }

    /// Sends several commands in one write on one connection and awaits all replies, in order.
    public func pipeline(_ commands: [[String]]) async throws -> [RESPValue] {
        let channel = try acquire()
        let requests = commands.map { command in
            RedisRequest(arguments: command.map { Array($0.utf8) }, timeout: requestTimeout, promise: channel.eventLoop.makePromise())
        }
        Self.write(requests, on: channel)
        do {
            var replies: [RESPValue] = []
            replies.reserveCapacity(requests.count)
            for request in requests { replies.append(try await request.promise.futureResult.get()) }
            state.withLockedValue { $0.breaker.recordSuccess() }
            return replies
        } catch {
            recordFailure()
            throw error
        }
    }

    /// Writes requests; if the write never reaches the connection handler (the channel closed
    /// in between), their promises fail instead of waiting forever. Promises the handler has
    /// already completed are unaffected: a completed promise ignores later results.
    static func write(_ requests: [RedisRequest], on channel: any Channel) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in
            for request in requests { request.promise.fail(RedisError.connectionClosed) }
        }
        channel.writeAndFlush(requests, promise: written)
    }

    /// Whether the breaker currently skips Redis.
    public var isCircuitOpen: Bool { state.withLockedValue { $0.breaker.isOpen } }

    /// Connections currently up.
    public var connectedCount: Int { state.withLockedValue { $0.slots.filter { $0.channel != nil }.count } }

    /// Waits until a connection is up (the client's service opens them as it starts), at
    /// most `limit`; returns whether one is.
    @discardableResult
    public func awaitConnection(atMost limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while connectedCount == 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return connectedCount > 0
    }

    private func acquire() throws -> any Channel {
        try state.withLockedValue { state in
            guard state.breaker.allow(now: .now) else { throw RedisError.circuitOpen }
            for offset in 0..<state.slots.count {
                let index = (state.next + offset) % state.slots.count
                if let channel = state.slots[index].channel {
                    state.next = index + 1
                    return channel
                }
            }
            // Nothing connected: fail at once rather than wait for a connect (I2).
            if case .halfOpen = state.breaker.state { state.breaker.recordFailure(now: .now) }
            throw RedisError.unavailable
        }
    }

    private func recordFailure() {
        let opened = state.withLockedValue { $0.breaker.recordFailure(now: .now) }
        if opened { logger.warning("redis circuit breaker open: skipping Redis until a probe succeeds") }
    }

    /// Keeps the connections up until graceful shutdown, then closes them.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                for index in dueSlots() {
                    group.addTask { await self.connect(slot: index) }
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(25)) }
            }
        }
        let channels = state.withLockedValue { state in
            state.shuttingDown = true
            return state.slots.compactMap(\.channel)
        }
        for channel in channels { try? await channel.close() }
    }

    private func dueSlots() -> [Int] {
        state.withLockedValue { state in
            var due: [Int] = []
            for index in state.slots.indices where state.slots[index].channel == nil && !state.slots[index].connecting && state.slots[index].retryAt <= .now {
                state.slots[index].connecting = true
                due.append(index)
            }
            return due
        }
    }

    private func connect(slot index: Int) async {
        do {
            let channel = try await openConnection()
            let keep = state.withLockedValue { state -> Bool in
                state.slots[index].connecting = false
                guard !state.shuttingDown else { return false }
                state.slots[index].channel = channel
                state.slots[index].backoff = .milliseconds(50)
                return true
            }
            guard keep else {
                try? await channel.close()
                return
            }
            logger.debug("redis connection up", metadata: ["slot": "\(index)", "redis": "\(endpoint.redacted)"])
            channel.closeFuture.whenComplete { _ in
                let notify = self.state.withLockedValue { state -> (@Sendable () -> Void)? in
                    state.slots[index].channel = nil
                    state.slots[index].retryAt = .now + state.slots[index].backoff
                    return state.shuttingDown ? nil : state.connectionLost
                }
                self.logger.debug("redis connection lost", metadata: ["slot": "\(index)"])
                notify?()
            }
        } catch {
            state.withLockedValue { state in
                state.slots[index].connecting = false
                state.slots[index].retryAt = .now + state.slots[index].backoff
                state.slots[index].backoff = min(state.slots[index].backoff * 2, .seconds(2))
            }
            logger.debug("redis connect failed", metadata: ["error": "\(error)", "redis": "\(endpoint.redacted)"])
        }
    }

    /// ``timeout`` for NIO's scheduler: every command's deadline.
    var requestTimeout: TimeAmount { .nanoseconds(Int64(timeout.milliseconds) * 1_000_000) }

    /// How long a reply may be outstanding before a connection counts as hung and is dropped.
    var hungAfter: TimeAmount { .milliseconds(max(20 * timeout.milliseconds, 1000)) }

    /// Opens one connection and runs AUTH, SELECT and PING on it.
    private func openConnection() async throws -> any Channel {
        let hungAfter = self.hungAfter
        return try await Self.openConnection(to: endpoint, on: group) { RedisConnectionHandler(hungAfter: hungAfter) }
    }

    /// Opens one connection to `endpoint` on `group` (one event loop pins it there), with the
    /// handler `makeHandler` builds, and runs AUTH, SELECT and PING on it.
    static func openConnection(
        to endpoint: RedisEndpoint, on group: any EventLoopGroup,
        makeHandler: @escaping @Sendable () -> RedisConnectionHandler
    ) async throws -> any Channel {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(1))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
        let channel: any Channel
        switch endpoint.address {
        case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port).get()
        case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
        }
        var handshake: [[String]] = []
        if let password = endpoint.password {
            handshake.append(["AUTH"] + (endpoint.username.map { [$0] } ?? []) + [password])
        }
        if endpoint.database != 0 { handshake.append(["SELECT", String(endpoint.database)]) }
        handshake.append(["PING"])
        do {
            for (reply, command) in zip(try await exchange(handshake, on: channel, timeout: .seconds(1)), handshake) {
                if case .error(let message) = reply {
                    // The message is Redis's (e.g. WRONGPASS); the password is never part of it.
                    throw RedisError.server("\(command[0]): \(message)")
                }
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return channel
    }

    /// Sends commands on one connection and awaits their replies, bypassing slots and breaker
    /// (for handshakes and dedicated connections).
    static func exchange(_ commands: [[String]], on channel: any Channel, timeout: TimeAmount) async throws -> [RESPValue] {
        let requests = commands.map {
            RedisRequest(arguments: $0.map { Array($0.utf8) }, timeout: timeout, promise: channel.eventLoop.makePromise())
        }
        write(requests, on: channel)
        var replies: [RESPValue] = []
        for request in requests { replies.append(try await request.promise.futureResult.get()) }
        return replies
    }
}
