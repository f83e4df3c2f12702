import Foundation
import AsyncHTTPClient
import HTTPTypes
import GatehouseCore
import GatehouseStore
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// What `serve` runs on: the stores (``GatehouseStores``), the Argon2id pool and the
/// in-process session cache. Built once, at startup.
public struct GatehouseDependencies: Sendable {
    /// The database, the store and the Redis cache.
    public let stores: GatehouseStores
    /// The in-process cache of the event loop's lookups, when Redis is set and
    /// `redis.local_cache_size` is not 0.
    public let localCache: LocalSessionCache?
    /// The Argon2id pool.
    public let hasher: Argon2Hasher
    /// The `abuse.*` counters: in Redis when it is configured, else in process.
    public let limiter: RateLimiter
    /// Sends the mail outbox, unless `mail.mailer` is `none`.
    let mailDelivery: MailDeliveryService?
    /// Renders and queues account mail.
    let accountMail: AccountMail
    /// Seals TOTP secrets with the `mfa.key_file` key.
    let secrets: SecretBox
    /// The HTML pages: templates, CSRF cookie, headers.
    let pages: Pages
    /// Work requests start and shutdown finishes.
    let background: BackgroundWork
    /// See ``secrets`` (for tests of what is stored).
    public var secretBox: SecretBox { secrets }

    /// The configuration in force.
    public var configuration: GatehouseConfiguration { stores.configuration }
    /// The SQLite database.
    public var database: GatehouseDatabase { stores.database }
    /// The store handlers use: SQLite, or Redis in front of SQLite.
    public var store: any AuthStore { stores.store }
    /// The Redis cache, when `redis.url` is set.
    public var cache: CachedAuthStore? { stores.cache }
    /// This instance's metrics.
    public var metrics: GatehouseMetrics { stores.metrics }

    /// Opens the stores, starts the hashing pool, and sets up the in-process cache.
    public static func open(_ configuration: GatehouseConfiguration, logger: Logger = Logger(label: "gatehouse")) throws -> GatehouseDependencies {
        let stores = try GatehouseStores.open(configuration, logger: logger)
        let hasher = try Argon2Hasher(
            parameters: configuration.password.argon2, workers: configuration.password.workers,
            queueLimit: configuration.password.queueLimit, maxWait: configuration.password.maxWait, hashDurations: stores.metrics.hashDuration
        )
        // Read now: a missing list stops startup rather than the first signup.
        let commonPasswords = CommonPasswords.shared.count
        logger.debug("common passwords loaded", metadata: ["count": "\(commonPasswords)"])
        let localCache = stores.cache.flatMap { cache in
            configuration.redis.localCacheSize > 0
                ? LocalSessionCache(store: cache, group: MultiThreadedEventLoopGroup.singleton, capacity: configuration.redis.localCacheSize, logger: logger)
                : nil
        }
        let delivery = try MailDeliveryService.configured(configuration, store: stores.sqlite, logger: logger)
        return GatehouseDependencies(
            stores: stores, localCache: localCache, hasher: hasher, limiter: RateLimiter(redis: stores.cache?.redis, logger: logger),
            mailDelivery: delivery, accountMail: try AccountMail(configuration: configuration, delivery: delivery),
            secrets: try SecretBox.load(
                keyFile: configuration.mfa.keyFile.isEmpty ? nil : configuration.mfa.keyFile, environment: ProcessInfo.processInfo.environment,
                defaultPath: configuration.database.path + ".mfa-key"
            ),
            pages: try Pages(configuration),
            background: BackgroundWork(sqlite: stores.sqlite, logger: logger)
        )
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

    /// What keeps the dummy hash for unknown emails following the stored hashes.
    func dummyHashService(logger: Logger) -> DummyHashService {
        DummyHashService(store: store, hasher: hasher, logger: logger)
    }

    /// The services to run beside the HTTP server: purging, hashing, and the Redis cache.
    func services(logger: Logger) -> [any Service] {
        var services: [any Service] = [
            SessionPurgeService(store: store, interval: configuration.session.purgeInterval, logger: logger),
            HasherService(hasher: hasher),
            dummyHashService(logger: logger),
        ]
        if let cache { services += [cache.redis, cache] }
        if let localCache { services.append(localCache) }
        if let mailDelivery { services.append(mailDelivery) }
        if configuration.audit.retention > .zero {
            services.append(AuditRetentionService(sqlite: stores.sqlite, retention: configuration.audit.retention, logger: logger))
        }
        // Last: shut down first after the server has drained, while the stores still run.
        services.append(background)
        return services
    }

    /// See ``GatehouseStores/withCache(_:)``.
    public func withCache<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await stores.withCache(body)
    }
}

/// The router for every Gatehouse endpoint; `gateway` forwards proxied requests.
func buildRouter(_ dependencies: GatehouseDependencies, gateway: Gateway) -> Router<GatehouseRequestContext> {
    let router = Router(context: GatehouseRequestContext.self)
    router.add(middleware: APIErrorMiddleware(trustedProxies: dependencies.configuration.trustedProxies, pages: dependencies.pages, metrics: gateway.metrics))
    router.add(middleware: ReverseProxyMiddleware(gateway: gateway))
    router.add(
        middleware: CrossSiteMiddleware(
            policy: gateway.policy.crossSite, store: dependencies.store, audits: RateLimiter(redis: nil, logger: Logger(label: "gatehouse")),
            trustedProxies: dependencies.configuration.trustedProxies
        )
    )
    OperationsController(store: dependencies.store, cache: dependencies.cache).addRoutes(to: router)
    if dependencies.configuration.metrics.listen == nil { dependencies.metricsEndpoint.addRoutes(to: router) }
    AuthController(
        store: dependencies.store, accounts: dependencies.stores.accounts, hasher: dependencies.hasher, configuration: dependencies.configuration,
        redirects: gateway.policy.redirects, limiter: dependencies.limiter, mail: dependencies.accountMail,
        secrets: dependencies.secrets, pages: dependencies.pages, metrics: dependencies.metrics, background: dependencies.background
    ).addRoutes(to: router)
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
    let gateway = Gateway(configuration: configuration, authenticator: authenticator, client: upstreamClient, pages: dependencies.pages, metrics: dependencies.metrics)
    let webSockets = WebSocketProxy(gateway: gateway)
    // Client and upstream connections share the server's event loops (the singleton group).
    let upstreamPool = UpstreamConnectionPool(group: MultiThreadedEventLoopGroup.singleton, configuration: configuration.proxy)
    let fastPath = FastPathHandler.Settings(cache: dependencies.localCache, gateway: gateway, upstreams: upstreamPool, logger: logger)
    var application = Application(
        router: buildRouter(dependencies, gateway: gateway),
        server: HTTPServerBuilder { [connections = ClientConnectionCount(limit: configuration.client.maxConnections)] responder in
            GuardedChildChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    configuration: .init(http1: .init(additionalChannelHandlers: [FastPathHandler(settings: fastPath)]))
                ) { head, channel, logger in
                    try await webSockets.shouldUpgrade(head, channel: channel, logger: logger)
                },
                limits: configuration.client, count: connections
            )
        },
        configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: nil),
        services: [UpstreamClientService(client: upstreamClient), upstreamPool] + dependencies.metricsListener(logger: logger) + dependencies.services(logger: logger),
        onServerRunning: { channel in
            let address = channel.localAddress.map { "\($0.ipAddress ?? configuration.listen.host):\($0.port ?? 0)" } ?? "\(configuration.listen)"
            logger.notice("listening", metadata: ["address": "\(address)"])
            await onServerRunning(address)
        },
        logger: logger
    )
    // Before listening, so that from the first login on an unknown email costs what most accounts' hashes cost.
    let dummyHash = dependencies.dummyHashService(logger: logger)
    application.beforeServerStarts { await dummyHash.refresh() }
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

extension GatehouseDependencies {
    /// `/metrics` on this instance.
    var metricsEndpoint: MetricsEndpoint {
        MetricsEndpoint(metrics: metrics, sqlite: stores.sqlite, cache: cache, hasher: hasher)
    }

    /// The listener of `metrics.listen`, when it is set: `/metrics` alone.
    func metricsListener(logger: Logger) -> [any Service] {
        guard let address = configuration.metrics.listen else { return [] }
        let router = Router()
        metricsEndpoint.addRoutes(to: router)
        let application = Application(
            router: router, configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in
                let bound = channel.localAddress.map { "\($0.ipAddress ?? address.host):\($0.port ?? 0)" } ?? "\(address)"
                logger.notice("metrics listening", metadata: ["address": "\(bound)"])
            },
            logger: logger
        )
        return [application]
    }
}

/// Runs the server until SIGTERM or SIGINT, then drains (SPEC §2.6): the listener closes, each
/// connection finishes its request in progress and closes, the background work and the
/// services stop in turn; whatever is still running at `shutdown_timeout` is cancelled.
public func runGatehouse(_ dependencies: GatehouseDependencies, logger: Logger) async throws {
    var configuration = ServiceGroupConfiguration(
        services: [.init(service: buildApplication(dependencies, logger: logger))], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
    )
    configuration.maximumGracefulShutdownDuration = dependencies.configuration.shutdownTimeout
    configuration.maximumCancellationDuration = .seconds(5)
    try await ServiceGroup(configuration: configuration).run()
    logger.notice("stopped")
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
