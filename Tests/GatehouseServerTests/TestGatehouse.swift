import Foundation
import GRDB
import GatehouseCore
import GatehouseServer
import GatehouseStore
import GatehouseTestSupport
import Hummingbird
import HummingbirdTesting

/// How a test reaches the server: through the router in memory, or over a loopback socket.
enum Transport: String, CaseIterable, CustomStringConvertible {
    case router
    case live

    var setup: TestingSetup { self == .router ? .router : .live }
    var description: String { rawValue }
}

/// A Gatehouse built in-process on a SQLite file in a temp directory, logging into a capture.
struct TestGatehouse {
    let dependencies: GatehouseDependencies
    let logs: LogCapture

    var store: any AuthStore { dependencies.store }
    var database: GatehouseDatabase { dependencies.database }

    /// Cheap Argon2 parameters so that the suite runs fast; `configure` may change anything.
    static func configuration(in directory: TemporaryDirectory, _ configure: (inout GatehouseConfiguration) -> Void) -> GatehouseConfiguration {
        var configuration = GatehouseConfiguration()
        configuration.listen = ListenAddress(host: "127.0.0.1", port: 0)
        configuration.database.path = directory.file("gatehouse.sqlite")
        // Instances that share one file wait for each other's write lock on two shared cores
        // with the whole suite (a headless browser included) running: a readiness wait, as
        // for the test processes, not a timing assertion.
        configuration.database.busyTimeout = .seconds(30)
        configuration.password.argon2 = Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)
        configuration.password.workers = 2
        configuration.session.purgeInterval = .seconds(3600)
        // Off unless a test turns them on: suites log in many times from one address.
        configuration.abuse = .off
        // The cookie as over plain HTTP (`gatehouse_session`); tests of `Secure` and of the
        // `__Host-` name it then gets turn it on.
        configuration.cookie.secure = false
        configure(&configuration)
        return configuration
    }

    /// Runs `body` against a fresh server reached through `transport`.
    static func run(
        _ transport: Transport = .router,
        configure: (inout GatehouseConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (any HTTPTarget, TestGatehouse) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let logs = LogCapture()
        let dependencies = try GatehouseDependencies.open(configuration(in: directory, configure), logger: logs.logger())
        let gatehouse = TestGatehouse(dependencies: dependencies, logs: logs)
        let app = buildApplication(dependencies, logger: logs.logger())
        try await app.test(transport.setup) { client in
            // Over a socket, every request gets its own connection so that concurrent requests
            // really are concurrent (one connection would serialise them).
            let target: any HTTPTarget = client.port.map { SocketTarget(host: "127.0.0.1", port: $0) } ?? TestClientTarget(client)
            try await body(target, gatehouse)
        }
    }

    /// Number of rows in a table.
    func count(_ table: String) async throws -> Int {
        try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? -1 }
    }

    /// Row counts of users, sessions and audit events, to show that a refused request changed nothing.
    func counts() async throws -> [Int] {
        [try await count("users"), try await count("sessions"), try await count("audit_events")]
    }
}
