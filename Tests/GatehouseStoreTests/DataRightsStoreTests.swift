import Foundation
import GRDB
import GatehouseCore
import GatehouseTestSupport
import Testing

@testable import GatehouseStore

@Suite("Audit retention and erasure on the SQLite store")
struct DataRightsStoreTests {
    /// Every audit row, as (user id, email, ip, event), oldest first.
    func rows(_ database: GatehouseDatabase) async throws -> [[String?]] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT user_id, email, ip, event FROM audit_events ORDER BY id").map { [$0[0], $0[1], $0[2], $0[3]] }
        }
    }

    @Test("audit.retention deletes the rows older than the cutoff, in batches, and nothing newer")
    func retention() async throws {
        try await withStore { store, database in
            for index in 0..<7 {
                try await store.recordLoginFailure(email: "old\(index)@example.com", userId: nil, reason: "unknown_email", client: client)
            }
            try await Task.sleep(for: .milliseconds(20))
            let cutoff = Date()
            try await Task.sleep(for: .milliseconds(20))
            try await store.recordLoginFailure(email: "new@example.com", userId: nil, reason: "unknown_email", client: client)
            #expect(try await store.purgeAudit(before: cutoff, batch: 3) == 7)
            #expect(try await rows(database).map { $0[1] } == ["new@example.com"])
            // The allowance ends with its transaction: a plain delete is refused again.
            await #expect(throws: DatabaseError.self) {
                try await database.pool.write { db in try db.execute(sql: "DELETE FROM audit_events") }
            }
            let maintenance = try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_maintenance") }
            #expect(maintenance == 0)
        }
    }

    @Test("the erasure allowance rewrites who a row is about, never what happened, and allows no delete")
    func erasureAllowanceIsNarrow() async throws {
        try await withStore { store, database in
            try await store.recordLoginFailure(email: "x@example.com", userId: nil, reason: "unknown_email", client: client)
            for change in ["event = 'signup'", "outcome = 'success'", "at = 0", "reason = NULL", "session_id = 'x'"] {
                await #expect(throws: DatabaseError.self, "\(change)") {
                    try await database.pool.write { db in
                        try SQLiteAuthStore.auditMaintenance(db, purpose: "erasure") { try db.execute(sql: "UPDATE audit_events SET \(change)") }
                    }
                }
            }
            await #expect(throws: DatabaseError.self) {
                try await database.pool.write { db in
                    try SQLiteAuthStore.auditMaintenance(db, purpose: "erasure") { try db.execute(sql: "DELETE FROM audit_events") }
                }
            }
            await #expect(throws: DatabaseError.self) {
                try await database.pool.write { db in
                    try SQLiteAuthStore.auditMaintenance(db, purpose: "retention") { try db.execute(sql: "UPDATE audit_events SET email = NULL") }
                }
            }
            #expect(try await rows(database) == [[nil, "x@example.com", "192.0.2.1", "login"]])
        }
    }

    @Test("erasing a user removes the account and what hangs on it, and pseudonymises its audit rows alone")
    func erase() async throws {
        try await withStore { store, database in
            let token = SessionToken.generate()
            let user = try await store.createUser(email: "a@example.com", passwordHash: "h", session: newSession(token), client: client)
            _ = try await store.createUser(email: "b@example.com", passwordHash: "h", session: newSession(.generate()), client: client)
            try await store.recordLoginFailure(email: "a@example.com", userId: user.id, reason: "wrong_password", client: client)
            let erasure = try #require(try await store.eraseUser(email: "a@example.com", client: .commandLine))
            #expect(erasure.sessions == 1)
            #expect(erasure.effects.revoked == [token.hash.hex])
            #expect(erasure.effects.refreshed == [user.id])
            #expect(try await store.user(email: "a@example.com") == nil)
            #expect(try await store.validateSession(token.hash, now: Date()) == .unknown)
            let all = try await rows(database)
            // Signup, failed login and the revoked session are the erased user's, under the
            // pseudonym with nothing that names them; the deletion itself is recorded last.
            let theirs = all.filter { $0[0] == erasure.pseudonym }
            #expect(theirs.map { $0[3] } == ["signup", "login", "session_revoked", "user_deleted"])
            #expect(theirs.dropLast().allSatisfy { $0[1] == nil && $0[2] == "" })
            #expect(!all.contains { $0[0] == user.id || $0[1] == "a@example.com" })
            #expect(all.contains { $0[1] == "b@example.com" && $0[2] == "192.0.2.1" })
            #expect(try await store.eraseUser(email: "a@example.com", client: .commandLine) == nil)
        }
    }
}
