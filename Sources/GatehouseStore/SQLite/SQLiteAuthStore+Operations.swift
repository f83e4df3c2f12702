import Foundation
import GatehouseCore
import GRDB

/// What an operator reads about the database: the gauges of `/metrics`.
public struct DatabaseCounts: Sendable, Equatable {
    /// Sessions that have not expired (idle ones included until they are purged).
    public var activeSessions: Int
    /// Mail messages neither sent nor given up on.
    public var mailOutbox: Int
    /// Rows in the audit log.
    public var auditRows: Int
}

extension SQLiteAuthStore {
    /// The counts behind the database gauges, in one read.
    public func counts(now: Date) async throws -> DatabaseCounts {
        let nowMilliseconds = Timestamp.milliseconds(now)
        return try await database.pool.read { db in
            DatabaseCounts(
                activeSessions: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sessions WHERE expires_at > ?", arguments: [nowMilliseconds]) ?? 0,
                mailOutbox: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL") ?? 0,
                auditRows: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_events") ?? 0
            )
        }
    }
}

extension SQLiteAuthStore {
    /// Deletes audit rows older than `cutoff` (`audit.retention`), at most `batch` per
    /// transaction so that the single writer is never held long; the number deleted.
    public func purgeAudit(before cutoff: Date, batch: Int = 5_000) async throws -> Int {
        let cutoffMilliseconds = Timestamp.milliseconds(cutoff)
        var total = 0
        while true {
            let deleted = try await database.write { db in
                try Self.auditMaintenance(db, purpose: "retention") {
                    try db.execute(
                        sql: "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ? ORDER BY id LIMIT ?)",
                        arguments: [cutoffMilliseconds, batch]
                    )
                    return db.changesCount
                }
            }
            total += deleted
            if deleted < batch { return total }
        }
    }
}
