import Foundation
import Logging
import ServiceLifecycle

/// Deletes audit rows older than `audit.retention`, at start and then hourly. Every instance
/// may run it: the deletes are idempotent and batched.
public struct AuditRetentionService: Service {
    let sqlite: SQLiteAuthStore
    let retention: Duration
    let interval: Duration
    let logger: Logger

    /// Creates the service.
    public init(sqlite: SQLiteAuthStore, retention: Duration, interval: Duration = .seconds(3600), logger: Logger) {
        self.sqlite = sqlite
        self.retention = retention
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let purged = try await sqlite.purgeAudit(before: Date().addingTimeInterval(-retention.seconds))
                if purged > 0 { logger.info("purged audit rows past retention", metadata: ["count": "\(purged)"]) }
            } catch {
                logger.error("purging audit rows failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
