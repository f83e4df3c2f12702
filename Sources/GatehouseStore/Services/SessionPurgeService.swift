import Foundation
import GatehouseCore
import Logging
import ServiceLifecycle

/// Deletes expired sessions every `interval`, auditing each, until shutdown.
public struct SessionPurgeService: Service {
    let store: any AuthStore
    let interval: Duration
    let logger: Logger

    /// Creates the service.
    public init(store: any AuthStore, interval: Duration, logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    /// Purges once at start, then every interval.
    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let purged = try await store.purgeExpiredSessions(now: Date())
                if purged > 0 { logger.info("purged expired sessions", metadata: ["count": "\(purged)"]) }
            } catch {
                logger.error("purging expired sessions failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
