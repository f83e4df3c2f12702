import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird

// SPEC §2.4 TOTP: setup, confirm (with recovery codes), disable, new recovery codes, and the
// second step of a login. Secrets are sealed with the `mfa.key_file` key and bound to the user
// id; a code is accepted once per account (the step is stored in the transaction that accepts
// it), ±1 step; every attempt counts against `abuse.mfa_per_account`.
extension AuthController {
    func addMFARoutes(to router: Router<GatehouseRequestContext>) {
        router.post("/auth/mfa/totp/setup", use: form(setupTOTP, .totpSetup))
        router.post("/auth/mfa/totp/confirm", use: form(confirmTOTP, .totpConfirm))
        router.delete("/auth/mfa/totp", use: disableTOTP)
        router.post("/auth/mfa/recovery-codes", use: form(regenerateRecoveryCodes, .recoveryCodes))
        router.post("/auth/login/mfa", use: form(loginMFA, .loginMFA))
    }

    /// A new pending secret: its base32 form, the `otpauth://` URI and a QR code of it (SVG).
    @Sendable func setupTOTP(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, _) = try await authenticator.requireSession(request)
        let secret = TOTPSecret.generate()
        do {
            try await sqlite.beginTOTPSetup(user: user, sealedSecret: try secrets.seal(secret.bytes, userID: user.id), client: clientInfo(request, context: context))
        } catch AccountStoreError.mfaAlreadyEnabled {
            throw AuthError.conflict("mfa_already_enabled", "Two-factor login is already on; turn it off first to set up a new device.")
        }
        let uri = TOTPAuthenticator(secret: secret).otpauthURI(issuer: configuration.mfa.issuer, account: user.email)
        var body = JSONText()
        body.add("secret", secret.base32)
        body.add("otpauth_uri", uri)
        body.add("qr_svg", try QRCode(encoding: uri).svg(label: "QR code to scan with your authenticator app"))
        return .json(.ok, body)
    }

    /// Turns TOTP on with a code from the new device; answers the 10 recovery codes, shown once.
    @Sendable func confirmTOTP(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, _) = try await authenticator.requireSession(request)
        let code = try await AuthRequestBody.read(request, context: context).strings("code")[0]
        let client = clientInfo(request, context: context)
        try await abuse.admit([RateCheck("mfa_per_account", configuration.abuse.mfaPerAccount, subject: user.id)], email: user.email, client: client)
        guard let credential = try await sqlite.totpCredential(userId: user.id), !credential.confirmed else {
            throw AuthError.conflict("mfa_setup_required", "Start with POST /auth/mfa/totp/setup.")
        }
        let codes = RecoveryCode.generateSet()
        guard let step = try totp(credential, of: user).verify(code: code, at: Date(), after: credential.lastUsedStep),
            try await accounts.confirmTOTP(user: user, step: step, recoveryCodeHashes: codes.map { $0.hash(userID: user.id).hex }, client: client)
        else {
            throw AuthError.validation(["code": "That code is not right. Check that the device's clock is set automatically, and use the newest code."])
        }
        context.logger.info("mfa enabled", metadata: ["user_id": "\(user.id)"])
        return recoveryCodes(codes)
    }

    /// Turns TOTP off, with the password.
    @Sendable func disableTOTP(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, _) = try await authenticator.requireSession(request)
        let password = try await AuthRequestBody.read(request, context: context).strings("password")[0]
        try await checkPassword(password, of: user, for: .mfaDisabled, request: request, context: context)
        guard let updated = try await accounts.disableMFA(email: user.email, reason: "user", client: clientInfo(request, context: context)) else { throw AuthError.unauthenticated }
        context.logger.info("mfa disabled", metadata: ["user_id": "\(user.id)"])
        return .json(.ok, updated.json)
    }

    /// Replaces the recovery codes, with the password.
    @Sendable func regenerateRecoveryCodes(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, _) = try await authenticator.requireSession(request)
        let password = try await AuthRequestBody.read(request, context: context).strings("password")[0]
        guard try await sqlite.totpCredential(userId: user.id)?.confirmed == true else {
            throw AuthError.conflict("mfa_not_enabled", "Two-factor login is off: there are no recovery codes to replace.")
        }
        try await checkPassword(password, of: user, for: .recoveryCodesRegenerated, request: request, context: context)
        let codes = RecoveryCode.generateSet()
        try await sqlite.replaceRecoveryCodes(user: user, hashes: codes.map { $0.hash(userID: user.id).hex }, client: clientInfo(request, context: context))
        return recoveryCodes(codes)
    }

    /// The second step of a login: `mfa_token` from the first, and a TOTP `code` or a
    /// `recovery_code`. Success is a login like any other (new session, cookies replaced).
    @Sendable func loginMFA(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let body = try await AuthRequestBody.read(request, context: context)
        let challenge = try body.strings("mfa_token")[0]
        let client = clientInfo(request, context: context)
        guard let token = SessionToken(cookieValue: challenge), let user = try await sqlite.tokenOwner(token.hash, purpose: .mfaLogin), user.isActive else {
            throw AuthError.invalidMFAToken
        }
        try await abuse.admit([RateCheck("mfa_per_account", configuration.abuse.mfaPerAccount, subject: user.id)], email: user.email, client: client)
        // Wrong codes are failed logins: they count toward the lockout, and a locked account
        // cannot finish a login with a code (new mfa_tokens would otherwise renew the guessing).
        let candidate = try await store.loginCandidate(email: user.email)
        let bucket = try await abuse.bucket(email: user.email, candidate: candidate, client: client)
        if try await abuse.isLocked(bucket) {
            try await store.recordLoginFailure(email: user.email, userId: user.id, reason: "locked", client: client)
            throw AuthError.invalidCode
        }
        let accepted: Bool
        let method: String
        if let code = body.string("code") {
            method = "totp"
            if let credential = try await sqlite.totpCredential(userId: user.id), credential.confirmed,
                let step = try totp(credential, of: user).verify(code: code, at: Date(), after: credential.lastUsedStep)
            {
                // The conditional update is the replay guard: of two logins with one code, one wins.
                accepted = try await sqlite.useTOTPStep(userId: user.id, step: step)
            } else {
                accepted = false
            }
        } else if let typed = body.string("recovery_code") {
            method = "recovery_code"
            accepted = try await RecoveryCode(typed).asyncFlatMap { try await sqlite.useRecoveryCode(userId: user.id, codeHash: $0.hash(userID: user.id).hex) ? true : nil } ?? false
        } else {
            throw AuthError.validation(["code": "Enter the code from your authenticator app, or a recovery code as recovery_code."])
        }
        guard accepted else {
            let locked = try await store.recordLoginFailure(
                email: user.email, userId: user.id, reason: method == "totp" ? "wrong_mfa_code" : "wrong_recovery_code", client: client,
                counting: abuse.failureCount(bucket))
            if locked != nil { context.logger.notice("login locked", metadata: ["user_id": "\(user.id)", "address": "\(bucket.knownAddress == nil ? "elsewhere" : "known")"]) }
            throw AuthError.invalidCode
        }
        // Used up only now: a wrong code leaves the login to be finished within its five minutes.
        guard try await sqlite.consumeToken(token.hash, purpose: .mfaLogin) != nil else { throw AuthError.invalidMFAToken }
        let session = SessionToken.generate()
        try await store.recordLogin(
            user: user, session: newSession(session), replacing: authenticator.tokenHashes(request), upgradedPasswordHash: nil, client: client, clearing: bucket
        )
        context.logger.info("login", metadata: ["user_id": "\(user.id)", "second_factor": "\(method)"])
        return .json(.ok, user.json, headers: sessionCookie(session))
    }

    /// The first step's answer for an account with TOTP on: no cookie, a five-minute `mfa_token`.
    func mfaChallenge(for user: User, client: ClientInfo) async throws -> Response {
        let token = SessionToken.generate()
        try await sqlite.issueToken(
            token.hash, purpose: .mfaLogin, user: user, mail: nil,
            audit: AuditEvent(at: Date(), kind: .mfaChallenged, outcome: .success, userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent)
        )
        var body = JSONText()
        body.add("mfa_required", true)
        body.add("mfa_token", token.cookieValue)
        return .json(.ok, body)
    }

    /// The secret of a setup not yet confirmed, as the setup page shows it (for the page again
    /// after a wrong code); `nil` when there is none.
    func pendingTOTPSetup(of user: User) async throws -> [String: Any]? {
        guard let credential = try await sqlite.totpCredential(userId: user.id), !credential.confirmed,
            let secret = TOTPSecret(bytes: try secrets.open(credential.sealedSecret, userID: user.id))
        else { return nil }
        let uri = TOTPAuthenticator(secret: secret).otpauthURI(issuer: configuration.mfa.issuer, account: user.email)
        return ["secret": secret.base32, "qr_svg": try QRCode(encoding: uri).svg(label: "QR code to scan with your authenticator app")]
    }

    /// The authenticator for a stored credential.
    private func totp(_ credential: TOTPCredential, of user: User) throws -> TOTPAuthenticator {
        guard let secret = TOTPSecret(bytes: try secrets.open(credential.sealedSecret, userID: user.id)) else {
            throw SecretBoxError(message: "a stored TOTP secret has an unexpected length")
        }
        return TOTPAuthenticator(secret: secret)
    }

    /// 403 `invalid_credentials` unless `password` is the user's (rate limited as logins are).
    private func checkPassword(_ password: String, of user: User, for kind: AuditEventKind, request: Request, context: GatehouseRequestContext) async throws {
        if hasher.isSaturated { throw PasswordHasherError.overloaded }
        let client = clientInfo(request, context: context)
        try await abuse.admit([RateCheck("password_per_account", configuration.abuse.loginPerAccount, subject: user.id)], email: user.email, client: client)
        guard let candidate = try await store.loginCandidate(email: user.email), try await hasher.verify(password, against: candidate.passwordHash) else {
            try await store.audit(AuditEvent(at: Date(), kind: kind, outcome: .failure, reason: "wrong_password", userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
            throw AuthError.wrongPassword
        }
    }

    private func recoveryCodes(_ codes: [RecoveryCode]) -> Response {
        var body = JSONText()
        body.add("recovery_codes", codes.map(\.formatted))
        return .json(.ok, body)
    }
}
