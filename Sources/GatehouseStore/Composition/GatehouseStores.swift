import GatehouseCore
import Logging

/// The composition of the stores from a configuration: the SQLite database (migrated), the
/// store, and the Redis cache in front of it when `redis.url` is set. What a command needs,
/// and all of it: no hashing threads, no event loops of a server (see `GatehouseDependencies`
/// in GatehouseServer for what `serve` adds).
public struct GatehouseStores: Sendable {
    /// The configuration in force.
    public let configuration: GatehouseConfiguration
    /// The SQLite database.
    public let database: GatehouseDatabase
    /// The store: SQLite, or Redis in front of SQLite.
    public let store: any AuthStore
    /// The Redis cache, when `redis.url` is set and asked for.
    public let cache: CachedAuthStore?
    /// The SQLite store itself.
    public let sqlite: SQLiteAuthStore
    /// This instance's metrics (SPEC §2.6).
    public let metrics: GatehouseMetrics

    /// The account lifecycle's writes, with the cache told of each.
    public var accounts: AccountStore { AccountStore(sqlite: sqlite, cache: cache) }

    /// Opens and migrates the database, and sets up the Redis cache when configured and
    /// `redis` is true (its connections open when its service runs, or in ``withCache(_:)``).
    /// Invalidations are recorded whether or not Redis is configured here: the servers
    /// that cache apply them.
    public static func open(_ configuration: GatehouseConfiguration, redis: Bool = true, logger: Logger = Logger(label: "gatehouse")) throws -> GatehouseStores {
        let database = try GatehouseDatabase(configuration: configuration.database)
        try database.migrate()
        let endpoint = configuration.redis.endpoint
        let sqlite = SQLiteAuthStore(
            database: database, policy: SessionPolicy(idleTimeout: configuration.session.idleTimeout),
            invalidationRetention: configuration.session.lifetime
        )
        let metrics = GatehouseMetrics(upstreams: configuration.upstreams.keys)
        var cache: CachedAuthStore?
        if let endpoint, redis {
            let client = RedisClient(endpoint: endpoint, timeout: configuration.redis.timeout, connections: configuration.redis.connections, logger: logger)
            let keyFile = configuration.redis.entryKeyFile.isEmpty ? CacheEntryKey.defaultPath(databasePath: configuration.database.path) : configuration.redis.entryKeyFile
            cache = CachedAuthStore(
                sqlite: sqlite, redis: client, entryKey: try CacheEntryKey.load(path: keyFile), cacheTTL: configuration.redis.cacheTTL,
                sessionLifetime: configuration.session.lifetime, metrics: metrics, logger: logger
            )
        }
        return GatehouseStores(configuration: configuration, database: database, store: cache ?? sqlite, cache: cache, sqlite: sqlite, metrics: metrics)
    }

    /// Runs `body` with the Redis connections up (for command-line tools), then applies any
    /// cache invalidations `body` caused. Without Redis it just runs `body`.
    public func withCache<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        guard let cache else { return try await body() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await cache.redis.run() }
            await cache.redis.awaitConnection(atMost: .seconds(1))
            let result = try await body()
            // Whatever cannot be applied now stays in the outbox for the servers to replay.
            await cache.applyInvalidations()
            group.cancelAll()
            return result
        }
    }
}
