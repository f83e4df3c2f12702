import Foundation
import GRDB
import GatehouseCore
import GatehouseTestSupport
import Testing

@testable import GatehouseStore

@Suite("Account lifecycle in the SQLite store (SPEC §2.4)")
struct AccountStoreTests {
    static func alice(_ store: SQLiteAuthStore) async throws -> User {
        try await store.createUser(email: "alice@example.com", passwordHash: "x", session: nil, client: client)
    }

    @Test("a TOTP step is recorded once: of parallel logins with one code exactly one passes, and no earlier step after it")
    func stepOnce() async throws {
        try await withStore { store, _ in
            let user = try await Self.alice(store)
            try await store.beginTOTPSetup(user: user, sealedSecret: "v1.sealed", client: client)
            // Not before confirmation: a pending secret is no second factor.
            #expect(try await store.useTOTPStep(userId: user.id, step: 100) == false)
            #expect(try await store.confirmTOTP(user: user, step: 100, recoveryCodeHashes: ["a", "b"], client: client) != nil)
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { try await store.useTOTPStep(userId: user.id, step: 101) } }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            #expect(try await store.useTOTPStep(userId: user.id, step: 100) == false)
            #expect(try await store.useTOTPStep(userId: user.id, step: 102) == true)
            #expect(try await store.useRecoveryCode(userId: user.id, codeHash: "a") == true)
            #expect(try await store.useRecoveryCode(userId: user.id, codeHash: "a") == false)
            #expect(try await store.recoveryCodeCount(userId: user.id) == 1)
        }
    }

    @Test("tokens are stored hashed, used once, refused past their lifetime and for another purpose")
    func tokens() async throws {
        try await withStore { store, database in
            let user = try await Self.alice(store)
            let token = SessionToken.generate()
            try await store.issueToken(token.hash, purpose: .passwordReset, user: user, mail: nil, audit: nil)
            let stored = try await database.pool.read { db in try String.fetchAll(db, sql: "SELECT token_hash FROM account_tokens") }
            #expect(stored == [token.hash.hex])
            #expect(try await store.consumeToken(token.hash, purpose: .emailVerification) == nil)
            #expect(try await store.consumeToken(token.hash, purpose: .passwordReset)?.id == user.id)
            #expect(try await store.consumeToken(token.hash, purpose: .passwordReset) == nil)
            let old = SessionToken.generate()
            try await store.issueToken(old.hash, purpose: .mfaLogin, user: user, mail: nil, audit: nil)
            try await database.pool.write { db in try db.execute(sql: "UPDATE account_tokens SET expires_at = 1") }
            #expect(try await store.tokenOwner(old.hash, purpose: .mfaLogin) == nil)
            _ = try await store.purgeExpiredSessions(now: Date())
            #expect(try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM account_tokens") } == 0)
        }
    }

    @Test("a password change voids half-done MFA logins; a disabled account's reset link changes nothing")
    func passwordChangesVoidTokens() async throws {
        try await withStore { store, database in
            let user = try await Self.alice(store)
            let challenge = SessionToken.generate()
            try await store.issueToken(challenge.hash, purpose: .mfaLogin, user: user, mail: nil, audit: nil)
            _ = try await store.changePassword(user: user, passwordHash: "y", session: newSession(SessionToken.generate()), client: client)
            #expect(try await store.tokenOwner(challenge.hash, purpose: .mfaLogin) == nil)

            let reset = SessionToken.generate()
            try await store.issueToken(reset.hash, purpose: .passwordReset, user: user, mail: nil, audit: nil)
            #expect(try await store.setDisabled(email: user.email, disabled: true, client: client))
            #expect(try await store.resetPassword(token: reset.hash, passwordHash: "z", client: client) == nil)
            let hash = try await database.pool.read { db in try String.fetchOne(db, sql: "SELECT password_hash FROM users") }
            #expect(hash == "y")
        }
    }

    @Test("a claimed message is not claimed again until its lease ends; a sent one never again, and its text is cleared")
    func outboxClaims() async throws {
        try await withStore { store, database in
            let mail = OutgoingMail(purpose: "test", envelopeFrom: "a@example.com", recipient: "b@example.com", message: "Subject: x\r\n\r\nsecret-link\r\n")
            try await store.queueMail(mail, userId: nil, audit: nil)
            let first = try await store.claimDueMail(limit: 10, lease: .seconds(60))
            #expect(first.map(\.mail) == [mail])
            #expect(try await store.claimDueMail(limit: 10, lease: .seconds(60)).isEmpty)
            try await store.markMailFailed(id: first[0].id, error: "connection refused", retryAt: Date())
            let again = try await store.claimDueMail(limit: 10, lease: .seconds(60))
            #expect(again.map(\.attempts) == [1])
            try await store.markMailSent(id: again[0].id)
            #expect(try await store.claimDueMail(limit: 10, lease: .seconds(0)).isEmpty)
            #expect(try await store.pendingMailCount() == 0)
            let text = try await database.pool.read { db in try String.fetchOne(db, sql: "SELECT message FROM mail_outbox") }
            #expect(text == "")
        }
    }
}
