import AsyncHTTPClient
import HTTPTypes
import GatehouseCore
import GatehouseStore
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The stores and workers a running Gatehouse shares between its handlers.
public struct GatehouseDependencies: Sendable {
    /// The configuration in force.
    public let configuration: GatehouseConfiguration
    /// The SQLite database.
    public let database: GatehouseDatabase
    /// The store handlers use: SQLite, or Redis in front of SQLite.
    public let store: any AuthStore
    /// The Redis cache, when `redis.url` is set.
    public let cache: CachedAuthStore?
    /// The in-process cache behind the fast path (verify, authenticated proxying), when Redis is set and
    /// `redis.local_cache_size` is not 0.
    public let localCache: LocalSessionCache?
    /// The Argon2id pool.
    public let hasher: Argon2Hasher

    /// Opens and migrates the database, starts the hashing pool, and sets up the Redis cache
    /// when configured (its connections open when its services run).
    public static func open(_ configuration: GatehouseConfiguration, logger: Logger = Logger(label: "gatehouse")) throws -> GatehouseDependencies {
        let database = try GatehouseDatabase(configuration: configuration.database)
        try database.migrate()
        let hasher = try Argon2Hasher(
            parameters: configuration.password.argon2, workers: configuration.password.workers,
            queueLimit: configuration.password.queueLimit
        )
        let endpoint = configuration.redis.endpoint
        let sqlite = SQLiteAuthStore(
            database: database, policy: SessionPolicy(idleTimeout: configuration.session.idleTimeout),
            recordsCacheInvalidations: endpoint != nil, invalidationRetention: configuration.session.lifetime
        )
        var cache: CachedAuthStore?
        if let endpoint {
            let redis = RedisClient(endpoint: endpoint, timeout: configuration.redis.timeout, connections: configuration.redis.connections, logger: logger)
            cache = CachedAuthStore(sqlite: sqlite, redis: redis, cacheTTL: configuration.redis.cacheTTL, sessionLifetime: configuration.session.lifetime, logger: logger)
        }
        let localCache = cache.flatMap { cache in
            configuration.redis.localCacheSize > 0
                ? LocalSessionCache(store: cache, group: MultiThreadedEventLoopGroup.singleton, capacity: configuration.redis.localCacheSize, logger: logger)
                : nil
        }
        return GatehouseDependencies(configuration: configuration, database: database, store: cache ?? sqlite, cache: cache, localCache: localCache, hasher: hasher)
    }

    /// The client for upstreams: keep-alive pools per upstream, redirects passed through
    /// unfollowed, no decompression. It belongs to the server (see ``UpstreamClientService``).
    func makeUpstreamClient() -> HTTPClient {
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .nanoseconds(Int64(configuration.proxy.connectTimeout.milliseconds) * 1_000_000),
                read: .nanoseconds(Int64(configuration.proxy.idleTimeout.milliseconds) * 1_000_000)
            ),
            connectionPool: .init(idleTimeout: .seconds(60)),
            decompression: .disabled
        )
        clientConfiguration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration)
    }

    /// The services to run beside the HTTP server: purging, hashing, and the Redis cache.
    func services(logger: Logger) -> [any Service] {
        var services: [any Service] = [
            SessionPurgeService(store: store, interval: configuration.session.purgeInterval, logger: logger),
            HasherService(hasher: hasher),
        ]
        if let cache { services += [cache.redis, cache] }
        if let localCache { services.append(localCache) }
        return services
    }

    /// Runs `body` with the Redis connections up (for command-line tools), then applies any
    /// cache invalidations `body` caused. Without Redis it just runs `body`.
    public func withCache<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        guard let cache else { return try await body() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await cache.redis.run() }
            let deadline = ContinuousClock.now + .seconds(1)
            while cache.redis.connectedCount == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let result = try await body()
            // Whatever cannot be applied now stays in the outbox for the servers to replay.
            await cache.applyInvalidations()
            group.cancelAll()
            return result
        }
    }
}

/// The router for every Gatehouse endpoint; `gateway` forwards proxied requests.
func buildRouter(_ dependencies: GatehouseDependencies, gateway: Gateway) -> Router<GatehouseRequestContext> {
    let router = Router(context: GatehouseRequestContext.self)
    router.add(middleware: APIErrorMiddleware(trustedProxies: dependencies.configuration.trustedProxies))
    router.add(middleware: ReverseProxyMiddleware(gateway: gateway))
    OperationsController(store: dependencies.store, cache: dependencies.cache).addRoutes(to: router)
    AuthController(store: dependencies.store, hasher: dependencies.hasher, configuration: dependencies.configuration, redirects: gateway.policy.redirects).addRoutes(to: router)
    VerifyController(gateway: gateway).addRoutes(to: router)
    return router
}

/// The whole server: router, background services, and the address to listen on.
///
/// - Parameter onServerRunning: called with the bound address once listening (port 0 picks a free port).
public func buildApplication(
    _ dependencies: GatehouseDependencies,
    logger: Logger,
    onServerRunning: @escaping @Sendable (String) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let configuration = dependencies.configuration
    let upstreamClient = dependencies.makeUpstreamClient()
    let authenticator = SessionAuthenticator(store: dependencies.store, cookie: configuration.cookie)
    let gateway = Gateway(configuration: configuration, authenticator: authenticator, client: upstreamClient)
    let webSockets = WebSocketProxy(gateway: gateway)
    // Client and upstream connections share the server's event loops (the singleton group).
    let upstreamPool = UpstreamConnectionPool(group: MultiThreadedEventLoopGroup.singleton, configuration: configuration.proxy)
    let fastPath = FastPathHandler.Settings(cache: dependencies.localCache, gateway: gateway, upstreams: upstreamPool, logger: logger)
    var application = Application(
        router: buildRouter(dependencies, gateway: gateway),
        server: .http1WebSocketUpgrade(
            configuration: .init(http1: .init(additionalChannelHandlers: [FastPathHandler(settings: fastPath)]))
        ) { head, channel, logger in
            try await webSockets.shouldUpgrade(head, channel: channel, logger: logger)
        },
        configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: nil),
        services: dependencies.services(logger: logger) + [UpstreamClientService(client: upstreamClient), upstreamPool],
        onServerRunning: { channel in
            let address = channel.localAddress.map { "\($0.ipAddress ?? configuration.listen.host):\($0.port ?? 0)" } ?? "\(configuration.listen)"
            logger.notice("listening", metadata: ["address": "\(address)"])
            await onServerRunning(address)
        },
        logger: logger
    )
    if let cache = dependencies.cache {
        // Listen once Redis is trusted (or known unusable): the first answers after startup
        // read Redis instead of sending every session to SQLite until the first round.
        application.beforeServerStarts {
            if await !cache.firstRound(atMost: startupWaitForRedis) {
                logger.warning("serving with SQLite alone until the redis cache is available")
            }
        }
    }
    return application
}

/// Longest the server waits for Redis before it listens: the first round is a connection, a
/// PING and the outbox replay, each bounded by its own timeout.
let startupWaitForRedis = Duration.seconds(10)

/// Closes the upstream connection pools when the server shuts down.
struct UpstreamClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}

/// Stops the Argon2 worker threads when the server shuts down.
struct HasherService: Service {
    let hasher: Argon2Hasher

    func run() async throws {
        try? await gracefulShutdown()
        try await hasher.shutdown()
    }
}
