import GatehouseCore
import GatehouseStore
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The stores and workers a running Gatehouse shares between its handlers.
public struct GatehouseDependencies: Sendable {
    /// The configuration in force.
    public let configuration: GatehouseConfiguration
    /// The SQLite database.
    public let database: GatehouseDatabase
    /// The durable store.
    public let store: any AuthStore
    /// The Argon2id pool.
    public let hasher: Argon2Hasher

    /// Opens and migrates the database and starts the hashing pool.
    public static func open(_ configuration: GatehouseConfiguration) throws -> GatehouseDependencies {
        let database = try GatehouseDatabase(configuration: configuration.database)
        try database.migrate()
        let hasher = try Argon2Hasher(
            parameters: configuration.password.argon2, workers: configuration.password.workers,
            queueLimit: configuration.password.queueLimit
        )
        let store = SQLiteAuthStore(database: database, idleTimeout: configuration.session.idleTimeout)
        return GatehouseDependencies(configuration: configuration, database: database, store: store, hasher: hasher)
    }
}

/// The router for every Gatehouse endpoint.
public func buildRouter(_ dependencies: GatehouseDependencies) -> Router<GatehouseRequestContext> {
    let router = Router(context: GatehouseRequestContext.self)
    router.add(middleware: APIErrorMiddleware())
    OperationsController(store: dependencies.store).addRoutes(to: router)
    AuthController(store: dependencies.store, hasher: dependencies.hasher, configuration: dependencies.configuration).addRoutes(to: router)
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
    return Application(
        router: buildRouter(dependencies),
        configuration: .init(address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: nil),
        services: [
            SessionPurgeService(store: dependencies.store, interval: configuration.session.purgeInterval, logger: logger),
            HasherService(hasher: dependencies.hasher),
        ],
        onServerRunning: { channel in
            let address = channel.localAddress.map { "\($0.ipAddress ?? configuration.listen.host):\($0.port ?? 0)" } ?? "\(configuration.listen)"
            logger.notice("listening", metadata: ["address": "\(address)"])
            await onServerRunning(address)
        },
        logger: logger
    )
}

/// Stops the Argon2 worker threads when the server shuts down.
struct HasherService: Service {
    let hasher: Argon2Hasher

    func run() async throws {
        try? await gracefulShutdown()
        try await hasher.shutdown()
    }
}
