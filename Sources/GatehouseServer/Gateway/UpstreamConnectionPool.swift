import GatehouseCore
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Keep-alive HTTP/1 connections to upstreams for the event-loop proxy of ``FastPathHandler``:
/// one pool per event loop, so that a client connection and its upstream connection share a
/// loop and nothing is locked (SPEC §3). Idle connections close after `proxy.idle_timeout`
/// (at most 60 s) or when the server stops.
final class UpstreamConnectionPool: Service, Sendable {
    /// Idle connections kept per upstream per event loop; more are closed when released.
    static let idleLimit = 128

    private let pools: [ObjectIdentifier: LoopUpstreamPool]

    init(group: any EventLoopGroup, configuration: ProxyConfiguration) {
        var pools: [ObjectIdentifier: LoopUpstreamPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = LoopUpstreamPool(eventLoop: loop, configuration: configuration)
        }
        self.pools = pools
    }

    /// The pool of `eventLoop`, if it belongs to the group.
    func pool(for eventLoop: any EventLoop) -> LoopUpstreamPool? {
        pools[ObjectIdentifier(eventLoop)]
    }

    /// Closes every idle connection at graceful shutdown; busy ones close with their client.
    func run() async throws {
        try? await gracefulShutdown()
        for pool in pools.values {
            try? await pool.eventLoop.submit { pool.stop() }.get()
        }
    }
}

/// One event loop's share of ``UpstreamConnectionPool``. Everything but `init` runs on `eventLoop`.
final class LoopUpstreamPool: @unchecked Sendable {
    let eventLoop: any EventLoop
    let configuration: ProxyConfiguration
    private var idle: [String: [UpstreamConnectionHandler]] = [:]
    private var stopped = false

    init(eventLoop: any EventLoop, configuration: ProxyConfiguration) {
        self.eventLoop = eventLoop
        self.configuration = configuration
    }

    /// Hands `body` an idle connection to `upstream` (most recently used first, `reused`
    /// true) unless `fresh`, or a new one, or the reason none could be opened (→ 502).
    func withConnection(
        to upstream: UpstreamTarget, fresh: Bool = false,
        _ body: @escaping (_ connection: Result<UpstreamConnectionHandler, any Error>, _ reused: Bool) -> Void
    ) {
        eventLoop.preconditionInEventLoop()
        if !fresh, let reused = idle[upstream.address]?.popLast() {
            reused.leavePool()
            body(.success(reused), true)
            return
        }
        let address = upstream.address
        let pool = self
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.milliseconds * 1_000_000))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No second validation of outbound headers: every name and value comes from
                    // the client's parsed request, HTTP types fields (which legalise values),
                    // or Gatehouse's own (hex ids, addresses, normalised emails and paths).
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnectionHandler(address: address, pool: pool))
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .assumeIsolated()
            .whenComplete { result in
                body(result.flatMap { channel in Result { try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self) } }, false)
            }
    }

    /// Takes back a connection whose last response ended and that may be reused.
    func release(_ connection: UpstreamConnectionHandler) {
        eventLoop.preconditionInEventLoop()
        guard !stopped, idle[connection.address, default: []].count < UpstreamConnectionPool.idleLimit else {
            connection.close()
            return
        }
        idle[connection.address, default: []].append(connection)
        connection.enterPool(closingAfter: min(configuration.idleTimeout, .seconds(60)))
    }

    /// Forgets a connection that closed.
    func remove(_ connection: UpstreamConnectionHandler) {
        idle[connection.address]?.removeAll { $0 === connection }
    }

    func stop() {
        stopped = true
        let connections = idle.values.joined()
        idle = [:]
        for connection in connections { connection.close() }
    }
}
