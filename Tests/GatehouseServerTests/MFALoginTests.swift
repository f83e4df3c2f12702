import Foundation
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import Testing

/// The code for a base32 secret `offset` seconds from now, computed by pyotp (an independent
/// implementation).
func pyotpCode(_ secret: String, offset: Int = 0) async throws -> String {
    try await runPython("import pyotp, sys, time; print(pyotp.TOTP(sys.argv[1]).at(time.time() + int(sys.argv[2])))", arguments: [secret, String(offset)])
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite("TOTP two-factor login (SPEC §2.4)")
struct MFALoginTests {
    static let password = AuthAPITests.password

    /// Signs alice up and turns TOTP on; returns her session, the secret and the recovery codes.
    static func enrol(_ api: any HTTPTarget) async throws -> (session: String, secret: String, recovery: [String]) {
        let session = try #require(try await api.signup("alice@example.com", password).sessionToken())
        let setup = try await api.json(.post, "/auth/mfa/totp/setup", "{}", cookie: session)
        #expect(setup.status == 200)
        let secret = try #require(setup.json["secret"] as? String)
        let uri = try #require(setup.json["otpauth_uri"] as? String)
        #expect(uri.hasPrefix("otpauth://totp/Gatehouse:alice%40example.com?secret=\(secret)"))
        #expect((setup.json["qr_svg"] as? String)?.hasPrefix("<svg") == true)
        // Not on until confirmed: login still takes the password alone.
        #expect(try await api.login("alice@example.com", password).sessionToken() != nil)
        let wrong = try await api.json(.post, "/auth/mfa/totp/confirm", jsonBody(["code": "000000"]), cookie: session)
        #expect(wrong.status == 422)
        let confirmed = try await api.json(.post, "/auth/mfa/totp/confirm", jsonBody(["code": try await pyotpCode(secret)]), cookie: session)
        #expect(confirmed.status == 200)
        let recovery = try #require(confirmed.json["recovery_codes"] as? [String])
        #expect(recovery.count == 10 && Set(recovery).count == 10)
        #expect(try await api.get("/auth/me", cookie: session).json["mfa_enabled"] as? Bool == true)
        return (session, secret, recovery)
    }

    @Test("with TOTP on, login asks for a code (no cookie); a pyotp code logs in once, never twice", arguments: Transport.allCases)
    func twoStepLogin(transport: Transport) async throws {
        try await TestGatehouse.run(transport) { api, gatehouse in
            let (_, secret, _) = try await Self.enrol(api)
            let first = try await api.login("alice@example.com", Self.password)
            #expect(first.status == 200)
            #expect(first.setCookies.isEmpty)
            #expect(first.json["mfa_required"] as? Bool == true)
            let mfaToken = try #require(first.json["mfa_token"] as? String)
            #expect(try await gatehouse.count("sessions") == 2)

            let wrong = try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": mfaToken, "code": "123456"]))
            #expect(wrong.status == 401)
            #expect(wrong.json["error"] as? String == "invalid_credentials")
            // The confirm used this step's code: it is not accepted again (once per account).
            let used = try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": mfaToken, "code": try await pyotpCode(secret, offset: -30)]))
            #expect(used.status == 401)
            // The next step's code is inside the ±1 step of skew, and new.
            let code = try await pyotpCode(secret, offset: 30)
            let login = try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": mfaToken, "code": code]))
            #expect(login.status == 200)
            let session = try #require(login.sessionToken())
            #expect(try await api.get("/auth/me", cookie: session).status == 200)
            // The mfa_token is used up, and the code cannot be replayed with a new one.
            #expect(try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": mfaToken, "code": code])).status == 401)
            let second = try #require(try await api.login("alice@example.com", Self.password).json["mfa_token"] as? String)
            let replay = try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": second, "code": code]))
            #expect(replay.status == 401)
            #expect(replay.setCookies.isEmpty)
        }
    }

    @Test("a recovery code logs in once; TOTP turns off with the password only; an administrator can reset it")
    func recoveryAndDisable() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let (session, _, recovery) = try await Self.enrol(api)
            let challenge = try #require(try await api.login("alice@example.com", Self.password).json["mfa_token"] as? String)
            let typed = recovery[3].lowercased().replacingOccurrences(of: "-", with: " ")
            let login = try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": challenge, "recovery_code": typed]))
            #expect(login.status == 200)
            let again = try #require(try await api.login("alice@example.com", Self.password).json["mfa_token"] as? String)
            #expect(try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": again, "recovery_code": recovery[3]])).status == 401)
            #expect(try await gatehouse.count("recovery_codes") == 9)
            #expect(try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": String(repeating: "A", count: 43), "code": "123456"])).status == 401)

            let codes = try await api.json(.post, "/auth/mfa/recovery-codes", jsonBody(["password": Self.password]), cookie: session)
            #expect((codes.json["recovery_codes"] as? [String])?.count == 10)
            #expect(try await gatehouse.count("recovery_codes") == 10)

            #expect(try await api.json(.delete, "/auth/mfa/totp", jsonBody(["password": "not the password"]), cookie: session).status == 403)
            let off = try await api.json(.delete, "/auth/mfa/totp", jsonBody(["password": Self.password]), cookie: session)
            #expect(off.status == 200)
            #expect(off.json["mfa_enabled"] as? Bool == false)
            #expect(try await api.login("alice@example.com", Self.password).sessionToken() != nil)
            #expect(try await gatehouse.count("recovery_codes") == 0)
            #expect(try await gatehouse.count("totp_credentials") == 0)
            let kinds = try await gatehouse.store.auditEvents(AuditQuery(email: "alice@example.com")).map(\.kind)
            #expect([AuditEventKind.mfaSetupStarted, .mfaEnabled, .mfaChallenged, .recoveryCodesRegenerated, .mfaDisabled].allSatisfy(kinds.contains))
        }
    }

    @Test("wrong codes count toward the lockout: once locked, even the right code is refused, and new mfa_tokens do not renew the guessing")
    func wrongCodesLock() async throws {
        try await TestGatehouse.run(configure: { $0.abuse.lockout = LockoutConfiguration(maxFailures: 3, window: .seconds(900), ban: .seconds(900)) }) { api, gatehouse in
            let (_, secret, _) = try await Self.enrol(api)
            let early = try #require(try await api.login("alice@example.com", Self.password).json["mfa_token"] as? String)
            for _ in 0..<3 {
                let challenge = try #require(try await api.login("alice@example.com", Self.password).json["mfa_token"] as? String)
                #expect(try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": challenge, "code": "000000"])).status == 401)
            }
            // The third wrong code locked the account: the password step answers as for a
            // wrong password, and a challenge issued before the lock cannot be finished either.
            #expect(try await api.login("alice@example.com", Self.password).status == 401)
            let right = try await api.json(.post, "/auth/login/mfa", jsonBody(["mfa_token": early, "code": try await pyotpCode(secret, offset: 30)]))
            #expect(right.status == 401)
            #expect(right.setCookies.isEmpty)
            let reasons = try await gatehouse.store.auditEvents(AuditQuery(email: "alice@example.com")).compactMap(\.reason)
            #expect(reasons.filter { $0 == "wrong_mfa_code" }.count == 3)
            #expect(reasons.contains("locked"))
        }
    }

    @Test("the TOTP secret is stored sealed, bound to its user: copied to another account it does not open")
    func sealedAtRest() async throws {
        try await TestGatehouse.run { api, gatehouse in
            let (_, secret, _) = try await Self.enrol(api)
            let sealed = try await gatehouse.database.pool.read { db in try String.fetchOne(db, sql: "SELECT sealed_secret FROM totp_credentials") }
            let stored = try #require(sealed)
            #expect(!stored.contains(secret))
            #expect(stored.hasPrefix("v1."))
            #expect(throws: (any Error).self) { try gatehouse.dependencies.secretBox.open(stored, userID: UUID().uuidString.lowercased()) }
        }
    }
}
