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

    init(store: any AuthStore, hasher: Argon2Hasher, configuration: GatehouseConfiguration, redirects: RedirectValidator) {
        self.store = store
        self.hasher = hasher
        self.configuration = configuration
        self.authenticator = SessionAuthenticator(store: store, cookie: configuration.cookie)
        self.redirects = redirects
    }

    func addRoutes(to router: Router<GatehouseRequestContext>) {
        router.post("/auth/signup", use: signup)
        router.post("/auth/login", use: login)
        router.post("/auth/logout", use: logout)
        router.get("/auth/me", use: me)
    }

    @Sendable func signup(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let body = try await AuthRequestBody.read(request, context: context)
        let values = try body.strings("email", "password")
        let (rawEmail, password) = (values[0], values[1])
        var problems: [String: String] = [:]
        let email = CredentialPolicy.normalizedEmail(rawEmail)
        if email == nil { problems["email"] = "Enter a valid email address." }
        if !CredentialPolicy.isAcceptablePassword(password) { problems["password"] = CredentialPolicy.passwordLengthMessage }
        guard let email, problems.isEmpty else { throw AuthError.validation(problems) }
        // Answer a taken email before spending a hash on it; the insert below still
        // catches the race where two signups pass this check together.
        if try await store.user(email: email) != nil { throw AuthError.emailTaken }
        let passwordHash = try await hasher.hash(password)
        let token = SessionToken.generate()
        let client = clientInfo(request, context: context)
        let user: User
        do {
            user = try await store.createUser(email: email, passwordHash: passwordHash, session: newSession(token), client: client)
        } catch AuthStoreError.emailTaken {
            throw AuthError.emailTaken
        }
        context.logger.info("signup", metadata: ["user_id": "\(user.id)"])
        return .json(.created, user.json, headers: sessionCookie(token))
    }

    @Sendable func login(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let body = try await AuthRequestBody.read(request, context: context)
        let values = try body.strings("email", "password")
        let (rawEmail, password) = (values[0], values[1])
        let email = CredentialPolicy.normalizedEmail(rawEmail)
        let client = clientInfo(request, context: context)
        let candidate = try await email.asyncFlatMap { try await store.loginCandidate(email: $0) }
        // Unknown emails are checked against a dummy hash: the same work, the same time,
        // the same answer as a wrong password.
        let matches = try await hasher.verify(password, against: candidate?.passwordHash ?? hasher.dummyHash)
        guard let candidate, matches else {
            // Only a well-formed address is audited: what fails the check is often a password
            // typed into the email field, and no password is ever stored (I1). The failure is
            // recorded all the same, without an email.
            let reason = email == nil ? "invalid_email" : candidate == nil ? "unknown_email" : "wrong_password"
            try await store.recordLoginFailure(email: email, userId: candidate?.user.id, reason: reason, client: client)
            throw AuthError.invalidCredentials
        }
        guard candidate.user.isActive else {
            try await store.recordLoginFailure(email: email, userId: candidate.user.id, reason: "user_disabled", client: client)
            throw AuthError.invalidCredentials
        }
        // A hash made with older parameters is upgraded now that the password is known;
        // when the hashing pool is saturated the upgrade waits for a later login.
        let upgraded = hasher.needsRehash(candidate.passwordHash) ? try? await hasher.hash(password) : nil
        let token = SessionToken.generate()
        // No fixation: every session cookie the client came with is revoked (a cookie planted
        // on another path or a parent domain included) and a new id issued.
        try await store.recordLogin(
            user: candidate.user, session: newSession(token), replacing: authenticator.tokenHashes(request),
            upgradedPasswordHash: upgraded, client: client
        )
        context.logger.info("login", metadata: ["user_id": "\(candidate.user.id)"])
        if body.isForm, let rd = request.uri.queryParameters.get("rd") ?? body.string("rd") {
            // An HTML form posted from the login page: send the browser on to where it was
            // going, if that is a safe place (SPEC §2.3), else home.
            var headers = sessionCookie(token)
            headers[.location] = redirects.validate(rd) ?? "/"
            return Response(status: .seeOther, headers: headers)
        }
        return .json(.ok, candidate.user.json, headers: sessionCookie(token))
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
        ClientInfo(
            ip: ClientAddress.resolve(peer: context.peerAddress, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: configuration.trustedProxies),
            userAgent: request.headers[.userAgent] ?? ""
        )
    }
}

extension Optional {
    func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
