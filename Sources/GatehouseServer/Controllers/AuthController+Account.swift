import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import Logging

// SPEC §2.4: the caller's sessions, password change and reset, email verification.
extension AuthController {
    func addAccountRoutes(to router: Router<GatehouseRequestContext>) {
        router.get("/auth/sessions", use: sessions)
        router.delete("/auth/sessions/:id", use: deleteSession)
        router.post("/auth/logout-all", use: form(logoutAll, .logoutAll))
        router.post("/auth/password", use: form(changePassword, .changePassword))
        router.post("/auth/password/forgot", use: form(forgotPassword, .forgotPassword))
        router.post("/auth/password/reset", use: form(resetPassword, .resetPassword))
        router.post("/auth/email/verify", use: form(verifyEmail, .verifyEmail))
        router.post("/auth/email/resend", use: form(resendVerification, .resendVerification))
    }

    // MARK: Sessions

    /// The caller's live sessions, newest first; `id` is the public id, never the token.
    @Sendable func sessions(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, current) = try await authenticator.requireSession(request)
        let sessions = try await store.listSessions(userId: user.id).map { session in
            var object = JSONText()
            object.add("id", session.id)
            object.add("created_at", Timestamp.rfc3339(session.createdAt))
            object.add("last_seen_at", Timestamp.rfc3339(session.lastSeenAt))
            object.add("ip", session.ip)
            object.add("user_agent", session.userAgent)
            object.add("current", session.id == current.id)
            return object
        }
        var body = JSONText()
        body.add("sessions", sessions)
        return .json(.ok, body)
    }

    /// Revokes one of the caller's sessions; another user's id is a 404, like an unknown one.
    @Sendable func deleteSession(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, current) = try await authenticator.requireSession(request)
        let id = context.parameters.get("id") ?? ""
        guard try await accounts.revokeOwnSession(userId: user.id, sessionId: id, client: clientInfo(request, context: context)) else {
            throw AuthError.sessionNotFound
        }
        var headers = HTTPFields()
        if id == current.id { headers[.setCookie] = CookieHeader.clearingCookie(configuration.cookie) }
        SecurityHeaders.apply(to: &headers)
        return Response(status: .noContent, headers: headers)
    }

    /// Revokes every session of the caller, this one too, on every instance (I3).
    @Sendable func logoutAll(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, _) = try await authenticator.requireSession(request)
        let count = try await store.revokeSessions(.user(id: user.id), reason: "logout_all", client: clientInfo(request, context: context))
        context.logger.info("logout everywhere", metadata: ["user_id": "\(user.id)", "sessions": "\(count)"])
        var headers = HTTPFields()
        headers[.setCookie] = CookieHeader.clearingCookie(configuration.cookie)
        return .json(.ok, .message("Logged out of \(count) session\(count == 1 ? "" : "s")."), headers: headers)
    }

    // MARK: Passwords

    /// A password change with the current password: the session rotated, every other one
    /// revoked everywhere, reset links voided.
    @Sendable func changePassword(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, _) = try await authenticator.requireSession(request)
        if hasher.isSaturated { throw PasswordHasherError.overloaded }
        let values = try await AuthRequestBody.read(request, context: context).strings("current_password", "new_password")
        let client = clientInfo(request, context: context)
        // A stolen session must not become a password-guessing oracle: the account's login limit applies.
        try await abuse.admit([RateCheck("password_per_account", configuration.abuse.loginPerAccount, subject: user.id)], email: user.email, client: client)
        guard let candidate = try await store.loginCandidate(email: user.email), try await hasher.verify(values[0], against: candidate.passwordHash) else {
            try await store.audit(AuditEvent(at: Date(), kind: .passwordChanged, outcome: .failure, reason: "wrong_password", userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent))
            throw AuthError.wrongPassword
        }
        let newHash = try await newPasswordHash(values[1], field: "new_password", email: user.email)
        let token = SessionToken.generate()
        try await accounts.changePassword(user: user, passwordHash: newHash, session: newSession(token), client: client)
        context.logger.info("password changed", metadata: ["user_id": "\(user.id)"])
        return .json(.ok, user.json, headers: sessionCookie(token))
    }

    /// Always 202 with the same body (SPEC §2.4): the account is looked up, and the token and
    /// its mail committed, after the answer has gone, so neither the answer nor its timing
    /// says whether the address has an account.
    @Sendable func forgotPassword(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let values = try await AuthRequestBody.read(request, context: context).strings("email")
        let client = clientInfo(request, context: context)
        guard let email = CredentialPolicy.normalizedEmail(values[0]) else { throw AuthError.validation(["email": "Enter a valid email address."]) }
        let limits = configuration.abuse
        try await abuse.admit(
            [RateCheck("forgot_per_ip", limits.forgotPerIP, subject: client.ip), RateCheck("forgot_per_account", limits.forgotPerAccount, subject: email)],
            email: email, client: client
        )
        let logger = context.logger
        background.start { await sendPasswordReset(email: email, client: client, logger: logger) }
        return .json(.accepted, .message("If an account exists for this address, a link to reset its password is on its way."))
    }

    /// The work behind ``forgotPassword(_:context:)``: a token and its mail in one transaction.
    func sendPasswordReset(email: String, client: ClientInfo, logger: Logger) async {
        do {
            let user = try await store.user(email: email)
            guard let user, user.isActive, mail.isEnabled else {
                let reason = user == nil ? "unknown_email" : !mail.isEnabled ? "mail_disabled" : "user_disabled"
                try await store.audit(AuditEvent(at: Date(), kind: .passwordResetRequested, outcome: .failure, reason: reason, userId: user?.id, email: email, ip: client.ip, userAgent: client.userAgent))
                return
            }
            let token = SessionToken.generate()
            let message = try mail.message(.passwordReset, to: user, link: mail.link("/auth/password/reset", token: token))
            try await sqlite.issueToken(
                token.hash, purpose: .passwordReset, user: user, mail: message,
                audit: AuditEvent(at: Date(), kind: .passwordResetRequested, outcome: .success, userId: user.id, email: email, ip: client.ip, userAgent: client.userAgent)
            )
            mail.queued()
        } catch {
            logger.error("password reset mail not queued", metadata: ["error": "\(error)"])
        }
    }

    /// Sets a new password with a reset link's token; every session of the user revoked.
    @Sendable func resetPassword(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        if hasher.isSaturated { throw PasswordHasherError.overloaded }
        let values = try await AuthRequestBody.read(request, context: context).strings("token", "new_password")
        let client = clientInfo(request, context: context)
        // The token is checked before the password: a dead link says so whatever was typed.
        guard let token = SessionToken(cookieValue: values[0]), let owner = try await sqlite.tokenOwner(token.hash, purpose: .passwordReset) else {
            try await store.audit(AuditEvent(at: Date(), kind: .passwordReset, outcome: .failure, reason: "invalid_token", ip: client.ip, userAgent: client.userAgent))
            throw AuthError.invalidToken
        }
        let newHash = try await newPasswordHash(values[1], field: "new_password", email: owner.email)
        // Used up in the same transaction that sets the password: of two requests with one
        // token, one wins and the other is told the link is dead.
        guard let user = try await accounts.resetPassword(token: token.hash, passwordHash: newHash, client: client) else { throw AuthError.invalidToken }
        context.logger.info("password reset", metadata: ["user_id": "\(user.id)"])
        var headers = HTTPFields()
        headers[.setCookie] = CookieHeader.clearingCookie(configuration.cookie)
        return .json(.ok, .message("Your password has been changed. Log in with the new one."), headers: headers)
    }

    /// A new password's hash, or 422 naming `field` when the policy refuses it (SPEC §2.1).
    func newPasswordHash(_ password: String, field: String, email: String) async throws -> String {
        if let problem = CredentialPolicy.passwordProblem(password, email: email) { throw AuthError.validation([field: problem.message]) }
        return try await hasher.hash(password)
    }

    // MARK: Email verification

    /// Marks the email of a verification link's owner verified; no session needed.
    @Sendable func verifyEmail(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let values = try await AuthRequestBody.read(request, context: context).strings("token")
        let client = clientInfo(request, context: context)
        guard let token = SessionToken(cookieValue: values[0]), let user = try await accounts.verifyEmail(token: token.hash, client: client) else {
            try await store.audit(AuditEvent(at: Date(), kind: .emailVerified, outcome: .failure, reason: "invalid_token", ip: client.ip, userAgent: client.userAgent))
            throw AuthError.invalidToken
        }
        context.logger.info("email verified", metadata: ["user_id": "\(user.id)"])
        return .json(.ok, user.json)
    }

    /// Mails the caller a new verification link (rate limited like reset requests).
    @Sendable func resendVerification(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let (user, _) = try await authenticator.requireSession(request)
        if user.emailVerified { return .json(.ok, .message("Your email address is already verified.")) }
        guard mail.isEnabled else { throw AuthError.conflict("mail_disabled", "This server sends no mail; ask an administrator to verify your address.") }
        let client = clientInfo(request, context: context)
        try await abuse.admit([RateCheck("resend_per_account", configuration.abuse.forgotPerAccount, subject: user.id)], email: user.email, client: client)
        try await sendVerification(to: user, client: client)
        return .json(.accepted, .message("A new link is on its way to \(user.email)."))
    }

    /// Queues a verification mail: its token and the message in one transaction.
    func sendVerification(to user: User, client: ClientInfo) async throws {
        let token = SessionToken.generate()
        let message = try mail.message(.emailVerification, to: user, link: mail.link("/auth/email/verify", token: token))
        try await sqlite.issueToken(
            token.hash, purpose: .emailVerification, user: user, mail: message,
            audit: AuditEvent(at: Date(), kind: .emailVerificationSent, outcome: .success, userId: user.id, email: user.email, ip: client.ip, userAgent: client.userAgent)
        )
        mail.queued()
    }
}
