import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import Logging

/// The core auth API of SPEC §2.1: signup, login, logout, me.
struct AuthController: Sendable {
    let store: any AuthStore
    let hasher: Argon2Hasher
    let configuration: GatehouseConfiguration
    let authenticator: SessionAuthenticator
    let redirects: RedirectValidator
    let abuse: AbuseGuard
    /// The account lifecycle's writes (password change and reset, verification, MFA).
    let accounts: AccountStore
    /// Reset and verification mail.
    let mail: AccountMail
    /// Seals TOTP secrets at rest.
    let secrets: SecretBox
    /// The HTML pages and their forms (SPEC §2.5).
    let pages: Pages
    /// Where logins are counted.
    let metrics: GatehouseMetrics
    /// Work a handler starts and does not wait for; shutdown finishes it.
    let background: BackgroundWork

    /// The source of truth, for what only it holds (tokens, TOTP secrets, the outbox).
    var sqlite: SQLiteAuthStore { accounts.sqlite }

    init(store: any AuthStore, accounts: AccountStore, hasher: Argon2Hasher, configuration: GatehouseConfiguration, redirects: RedirectValidator, limiter: RateLimiter, mail: AccountMail, secrets: SecretBox, pages: Pages, metrics: GatehouseMetrics, background: BackgroundWork) {
        self.pages = pages
        self.metrics = metrics
        self.background = background
        self.store = store
        self.accounts = accounts
        self.mail = mail
        self.secrets = secrets
        self.hasher = hasher
        self.configuration = configuration
        self.authenticator = SessionAuthenticator(store: store, cookie: configuration.cookie)
        self.redirects = redirects
        self.abuse = AbuseGuard(limits: configuration.abuse, limiter: limiter, store: store)
    }

    func addRoutes(to router: Router<GatehouseRequestContext>) {
        router.post("/auth/signup", use: form(signup, .signup))
        router.post("/auth/login", use: form(countingLogin, .login))
        router.post("/auth/logout", use: form(logout, .logout))
        router.get("/auth/me", use: me)
        addAccountRoutes(to: router)
        addMFARoutes(to: router)
        addPageRoutes(to: router)
    }

    @Sendable func signup(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        // Refused before the body or the store is read: under a flood, refusals stay cheap.
        if hasher.isSaturated { throw PasswordHasherError.overloaded }
        let body = try await AuthRequestBody.read(request, context: context)
        let values = try body.strings("email", "password")
        let (rawEmail, password) = (values[0], values[1])
        let client = clientInfo(request, context: context)
        let email = CredentialPolicy.normalizedEmail(rawEmail)
        try await abuse.admit([RateCheck("signup_per_ip", configuration.abuse.signupPerIP, subject: client.ip)], email: email, client: client)
        var problems: [String: String] = [:]
        if email == nil { problems["email"] = "Enter a valid email address." }
        let passwordProblem = CredentialPolicy.passwordProblem(password, email: email)
        if let passwordProblem { problems["password"] = passwordProblem.message }
        guard let email, problems.isEmpty else {
            if let passwordProblem {
                try await store.audit(AuditEvent(at: Date(), kind: .signup, outcome: .failure, reason: passwordProblem.rawValue, email: email, ip: client.ip, userAgent: client.userAgent))
            }
            throw AuthError.validation(problems)
        }
        // Answer a taken email before spending a hash on it; the insert below still
        // catches the race where two signups pass this check together.
        if try await store.user(email: email) != nil { throw AuthError.emailTaken }
        let passwordHash = try await hasher.hash(password)
        let token = SessionToken.generate()
        let user: User
        do {
            user = try await store.createUser(email: email, passwordHash: passwordHash, session: newSession(token), client: client)
        } catch AuthStoreError.emailTaken {
            throw AuthError.emailTaken
        }
        context.logger.info("signup", metadata: ["user_id": "\(user.id)"])
        if mail.isEnabled {
            // The account is committed (I6); a verification mail that cannot be queued is
            // logged, and `POST /auth/email/resend` sends another.
            do { try await sendVerification(to: user, client: client) } catch {
                context.logger.error("verification mail not queued", metadata: ["error": "\(error)"])
            }
        }
        return .json(.created, user.json, headers: sessionCookie(token))
    }

    /// ``login(_:context:)``, its outcome counted: the refusals that happen before its own
    /// outcomes are known (a rate limit, a saturated hashing pool) are read from the error.
    @Sendable func countingLogin(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        do {
            let (response, outcome) = try await login(request, context: context)
            metrics.login(outcome)
            return response
        } catch let failure as LoginFailed {
            metrics.login(failure.outcome)
            throw failure.error
        } catch let error as AuthError where error.code == AuthError.rateLimited(retryAfter: 1).code {
            metrics.login(.rateLimited)
            throw error
        } catch PasswordHasherError.overloaded {
            metrics.login(.overloaded)
            throw PasswordHasherError.overloaded
        }
    }

    /// A login refused with `error`, counted as `outcome`.
    struct LoginFailed: Error {
        let outcome: GatehouseMetrics.LoginOutcome
        var error: AuthError = .invalidCredentials
    }

    @Sendable func login(_ request: Request, context: GatehouseRequestContext) async throws -> (Response, GatehouseMetrics.LoginOutcome) {
        if hasher.isSaturated { throw PasswordHasherError.overloaded }
        let body = try await AuthRequestBody.read(request, context: context)
        let values = try body.strings("email", "password")
        let (rawEmail, password) = (values[0], values[1])
        let email = CredentialPolicy.normalizedEmail(rawEmail)
        let client = clientInfo(request, context: context)
        let limits = configuration.abuse
        let candidate = try await email.asyncFlatMap { try await store.loginCandidate(email: $0) }
        let bucket = try await email.asyncFlatMap { try await abuse.bucket(email: $0, candidate: candidate, client: client) }
        // SPEC §2.4, before any Argon2 work: the client's address first, so that an address
        // already refused spends nothing of the account's allowance.
        try await abuse.admit(
            [RateCheck("login_per_ip", limits.loginPerIP, subject: client.ip), bucket.flatMap { RateCheck("login_per_account", limits.loginPerAccount, subject: $0.subject) }],
            email: email, client: client
        )
        if try await abuse.isLocked(bucket) {
            // The same answer as a wrong password (no oracle), without the hash: a lock is
            // there to stop spending it on this bucket.
            try await store.recordLoginFailure(email: email, userId: candidate?.user.id, reason: "locked", client: client)
            throw LoginFailed(outcome: .locked)
        }
        // Unknown emails are checked against a dummy hash: the same work, the same time,
        // the same answer as a wrong password.
        let matches = try await hasher.verify(password, against: candidate?.passwordHash ?? hasher.dummyHash)
        guard let candidate, matches else {
            // Only a well-formed address is audited: what fails the check is often a password
            // typed into the email field, and no password is ever stored (I1). The failure is
            // recorded all the same, without an email. Unknown emails count and lock like
            // accounts do, so the lockout does not tell which emails have one.
            let reason = email == nil ? "invalid_email" : candidate == nil ? "unknown_email" : "wrong_password"
            let locked = try await store.recordLoginFailure(email: email, userId: candidate?.user.id, reason: reason, client: client, counting: abuse.failureCount(bucket))
            if locked != nil { context.logger.notice("login locked", metadata: ["user_id": "\(candidate?.user.id ?? "-")", "address": "\(bucket?.knownAddress == nil ? "elsewhere" : "known")"]) }
            throw LoginFailed(outcome: candidate == nil ? .unknown : .wrongPassword)
        }
        guard candidate.user.isActive else {
            try await store.recordLoginFailure(email: email, userId: candidate.user.id, reason: "user_disabled", client: client)
            throw LoginFailed(outcome: .disabled)
        }
        if candidate.user.mfaEnabled {
            // The password is right; the session waits for the second factor. The hash upgrade
            // and the lockout's reset wait for the whole login too.
            return (try await mfaChallenge(for: candidate.user, client: client), .mfaRequired)
        }
        // A hash made with older parameters is upgraded now that the password is known;
        // when the hashing pool is saturated the upgrade waits for a later login.
        let upgraded = hasher.needsRehash(candidate.passwordHash) ? try? await hasher.hash(password) : nil
        let token = SessionToken.generate()
        // No fixation: every session cookie the client came with is revoked (a cookie planted
        // on another path or a parent domain included) and a new id issued.
        try await store.recordLogin(
            user: candidate.user, session: newSession(token), replacing: authenticator.tokenHashes(request),
            upgradedPasswordHash: upgraded, client: client, clearing: bucket
        )
        context.logger.info("login", metadata: ["user_id": "\(candidate.user.id)"])
        return (.json(.ok, candidate.user.json, headers: sessionCookie(token)), .success)
    }

    @Sendable func logout(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let client = clientInfo(request, context: context)
        for tokenHash in authenticator.tokenHashes(request) {
            // I6: the revocation is committed before the client hears it succeeded.
            _ = try await store.logout(tokenHash, client: client)
        }
        var headers = HTTPFields()
        headers[.setCookie] = CookieHeader.clearingCookie(configuration.cookie)
        return .json(.ok, .message("Logged out."), headers: headers)
    }

    @Sendable func me(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        switch try await authenticator.authenticate(request) {
        case .authenticated(let user, _):
            return .json(.ok, user.json)
        case .anonymous:
            return .error(.unauthenticated)
        case .rejected:
            // The store said no for certain: drop the dead cookie from the browser.
            var headers = HTTPFields()
            headers[.setCookie] = CookieHeader.clearingCookie(configuration.cookie)
            return .error(.unauthenticated, headers: headers)
        }
    }

    func newSession(_ token: SessionToken) -> NewSession {
        let now = Date()
        return NewSession(tokenHash: token.hash, createdAt: now, expiresAt: now.addingTimeInterval(configuration.session.lifetime.seconds))
    }

    func sessionCookie(_ token: SessionToken) -> HTTPFields {
        var headers = HTTPFields()
        headers[.setCookie] = CookieHeader.sessionCookie(configuration.cookie, value: token.cookieValue, maxAge: configuration.session.lifetime)
        return headers
    }

    func clientInfo(_ request: Request, context: GatehouseRequestContext) -> ClientInfo {
        ClientInfo(request, context: context, trustedProxies: configuration.trustedProxies)
    }
}

extension Optional {
    func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

extension ClientInfo {
    /// Who sent `request`: the real client address (through `trustedProxies`) and user agent,
    /// as sessions and the audit log record them.
    init(_ request: Request, context: GatehouseRequestContext, trustedProxies: [CIDR]) {
        self.init(
            ip: ClientAddress.resolve(peer: context.peerAddress, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: trustedProxies),
            userAgent: request.headers[.userAgent] ?? ""
        )
    }
}
