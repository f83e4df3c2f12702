import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import NIOCore

// SPEC §2.5: the pages, and HTML forms posted to the JSON API's own endpoints. The endpoint's
// handler makes every decision, for a form as for JSON; this adapter only checks the form's
// CSRF token and turns the handler's answer into what a browser should see: 303 after a
// success (the page itself when what it shows exists once: an MFA step, a TOTP secret,
// recovery codes), and after a failure the page again with the errors, its status, and the
// input kept (never a password or a code).
extension AuthController {
    /// What a form posted to an endpoint leads to.
    enum FormFlow: Sendable {
        case login, signup, logout, logoutAll, changePassword, forgotPassword, resetPassword, verifyEmail, resendVerification
        case totpSetup, totpConfirm, totpDisable, recoveryCodes, loginMFA, revokeSession
    }

    typealias Handler = @Sendable (Request, GatehouseRequestContext) async throws -> Response

    /// Fields a failed form shows again; the others (passwords, codes, the CSRF token) never.
    static let keptFields: Set<String> = ["email", "token", "mfa_token"]

    /// Notices a page may show after a 303 (`?notice=`): fixed texts, so that no link can
    /// make a page say something else.
    static let notices = [
        "logged_out": "You are logged out.",
        "password_changed": "Your password has been changed; your other sessions are logged out.",
        "password_reset": "Your password has been changed. Log in with the new one.",
        "reset_sent": "If an account exists for this address, a link to reset its password is on its way.",
        "email_verified": "Your email address is verified.",
        "verification_sent": "A new verification link is on its way.",
        "mfa_off": "Two-factor login is off.",
        "session_revoked": "That session is logged out.",
    ]

    func addPageRoutes(to router: Router<GatehouseRequestContext>) {
        let pages: [(String, Handler)] = [
            ("/auth/login", loginPage), ("/auth/signup", signupPage), ("/auth/logout", logoutPage), ("/auth/password/forgot", forgotPage),
            ("/auth/password/reset", resetPage), ("/auth/email/verify", verifyPage), ("/auth/mfa", mfaPage), ("/auth/account", accountPage),
            ("/auth/assets/style.css", stylesheet),
        ]
        // HEAD too: link checkers and mail scanners look before they open.
        for (path, page) in pages {
            router.get(RouterPath(path), use: page)
            router.head(RouterPath(path), use: page)
        }
        // HTML forms only GET and POST: the DELETE endpoints' twins, the same handlers.
        router.post("/auth/sessions/:id/revoke", use: form(deleteSession, .revokeSession))
        router.post("/auth/mfa/totp/disable", use: form(disableTOTP, .totpDisable))
    }

    // MARK: Pages

    @Sendable func loginPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        if let signedIn = try await signedInRedirect(request) { return signedIn }
        return pages.response(.login, title: "Log in", values: pageValues(request), requestHeaders: request.headers)
    }

    @Sendable func signupPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        if let signedIn = try await signedInRedirect(request) { return signedIn }
        return pages.response(.signup, title: "Create your account", values: pageValues(request), requestHeaders: request.headers)
    }

    /// A confirmation: a link (or a prefetch) never logs anyone out, only the form does.
    @Sendable func logoutPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        guard case .authenticated(let user, _) = try await authenticator.authenticate(request) else { return seeOther(loginRedirect()) }
        return pages.response(.logout, title: "Log out", values: ["email": user.email], requestHeaders: request.headers)
    }

    @Sendable func forgotPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        pages.response(.forgot, title: "Reset your password", values: pageValues(request), requestHeaders: request.headers)
    }

    /// The page a reset mail links to. The token leaves the URL first (``LinkTokenCookie``),
    /// then rides in the form.
    @Sendable func resetPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        try linkPage(request, path: "/auth/password/reset") { token in
            pages.response(.reset, title: "Choose a new password", values: ["values": ["token": token]], requestHeaders: request.headers)
        }
    }

    /// The page a verification mail links to: a button, never a verification on GET (mail
    /// scanners open links to look at them).
    @Sendable func verifyPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        try linkPage(request, path: "/auth/email/verify") { token in
            pages.response(.verify, title: "Verify your email address", values: ["values": ["token": token]], requestHeaders: request.headers)
        }
    }

    /// A mailed link's page at `path`: `?token=` is moved into the link cookie by a 303 to the
    /// bare path, which `page` then renders with the kept token.
    func linkPage(_ request: Request, path: String, _ page: (String) -> Response) throws -> Response {
        if let token = request.uri.queryParameters.get("token") {
            guard SessionToken(cookieValue: token) != nil else { return invalidLink(request, path: path) }
            return seeOther(path, setting: [pages.linkToken.keep(token, path: path)])
        }
        guard let token = pages.linkToken.token(in: request.headers) else { return invalidLink(request, path: path) }
        return page(token)
    }

    /// The code step follows a password (it is the login form's answer): on its own it leads to
    /// the account's settings, or to the login.
    @Sendable func mfaPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        guard case .authenticated = try await authenticator.authenticate(request) else { return seeOther(loginRedirect()) }
        return seeOther("/auth/account")
    }

    @Sendable func accountPage(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        try await account(request, values: pageValues(request))
    }

    @Sendable func stylesheet(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/css; charset=utf-8"
        headers[.cacheControl] = "public, max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: pages.templates.stylesheet)))
    }

    /// The account page for the request's session, with `values` (errors, a notice); the
    /// login page, returning here, without one.
    func account(_ request: Request, status: HTTPResponse.Status = .ok, values: [String: Any], headers: HTTPFields = [:]) async throws -> Response {
        guard case .authenticated(let user, let current) = try await authenticator.authenticate(request) else {
            return seeOther(loginRedirect(returningTo: "/auth/account"))
        }
        let sessions: [[String: Any]] = try await store.listSessions(userId: user.id).map { session in
            [
                "id": session.id, "ip": session.ip, "device": DeviceName.summary(session.userAgent),
                "last_seen_at": Timestamp.rfc3339(session.lastSeenAt), "last_seen": Self.readable(session.lastSeenAt), "current": session.id == current.id,
            ]
        }
        var all = values
        all.merge([
            "email": user.email, "email_verified": user.emailVerified, "mfa_enabled": user.mfaEnabled, "mail_enabled": mail.isEnabled,
            "sessions": sessions, "wide": true,
        ]) { $1 }
        return pages.response(.account, title: "Your account", status: status, values: all, requestHeaders: request.headers, headers: headers)
    }

    /// `4 Dec 2026, 21:07 UTC`: one fixed, unambiguous form (the page has no script to localise it).
    static func readable(_ date: Date) -> String {
        date.formatted(Date.VerbatimFormatStyle(
            format: "\(day: .defaultDigits) \(month: .abbreviated) \(year: .defaultDigits), \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits) UTC",
            locale: Locale(identifier: "en_GB"), timeZone: .gmt, calendar: Calendar(identifier: .gregorian)))
    }

    /// The values every page takes from its URL: a fixed notice, and `rd` when it is safe.
    func pageValues(_ request: Request, fields: [String: String] = [:]) -> [String: Any] {
        var values: [String: Any] = [:]
        if let notice = request.uri.queryParameters.get("notice").flatMap({ Self.notices[$0] }) { values["notice"] = notice }
        if let rd = safeReturn(request, fields: fields) { values["rd_query"] = Self.queryEncoded(rd) }
        return values
    }

    /// Someone already logged in who opens the login or signup page goes on to `rd` (or their account).
    func signedInRedirect(_ request: Request) async throws -> Response? {
        guard case .authenticated = try await authenticator.authenticate(request) else { return nil }
        return seeOther(safeReturn(request, fields: [:]) ?? "/auth/account")
    }

    func invalidLink(_ request: Request, path: String) -> Response {
        let reset = path == "/auth/password/reset"
        return pages.response(
            .message, title: "This link is incomplete", status: .badRequest,
            values: [
                "body": "Open the whole link from the mail (in this browser), or ask for a new one.",
                "link_href": reset ? "/auth/password/forgot" : "/auth/account",
                "link_text": reset ? "Ask for a new reset link" : "Ask for a new verification link",
            ],
            requestHeaders: request.headers
        )
    }

    /// Where a page sends someone to log in: Gatehouse's login page with a notice or `rd`, or
    /// `login_url` when it names another page (with `rd` alone: the notices are Gatehouse's).
    func loginRedirect(notice: String? = nil, returningTo rd: String? = nil) -> String {
        let own = configuration.loginURL == "/auth/login"
        var query: [String] = []
        if own, let notice { query.append("notice=\(notice)") }
        if let rd { query.append("rd=\(Self.queryEncoded(rd))") }
        guard !query.isEmpty else { return configuration.loginURL }
        return configuration.loginURL + (configuration.loginURL.contains("?") ? "&" : "?") + query.joined(separator: "&")
    }

    /// `rd` from the URL or the form, if it is a safe place to go (SPEC §2.3).
    func safeReturn(_ request: Request, fields: [String: String]) -> String? {
        (request.uri.queryParameters.get("rd").map { String($0) } ?? fields["rd"]).flatMap { redirects.validate($0) }
    }

    static func queryEncoded(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "/"
    }

    /// 303 to `location`, with the `Set-Cookie` fields of `response` (a new session, a cleared
    /// one), then `cookies`, and the used link's cookie cleared at `linkPath`.
    func seeOther(_ location: String, keepingCookiesOf response: Response? = nil, setting cookies: [String] = [], clearingLinkAt linkPath: String? = nil) -> Response {
        var headers = HTTPFields()
        for cookie in (response?.headers[values: .setCookie] ?? []) + cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        if let linkPath { headers.append(HTTPField(name: .setCookie, value: pages.linkToken.clear(path: linkPath))) }
        headers[.location] = location
        SecurityHeaders.apply(to: &headers)
        return Response(status: .seeOther, headers: headers)
    }

    // MARK: Forms

    /// `handler` for JSON as it is; for an HTML form, behind the CSRF token and rendered as a page.
    func form(_ handler: @escaping Handler, _ flow: FormFlow) -> Handler {
        { request, context in
            // The other encodings an HTML form can send: never the API's, and refused before
            // any handler runs (some read no body, and would act without the token).
            if Self.otherFormTypes.contains(AuthRequestBody.mediaType(request.headers)) { throw AuthError.unsupportedMediaType }
            guard AuthRequestBody.isForm(request.headers) else { return try await handler(request, context) }
            var request = request
            let fields: [String: String]
            do {
                fields = try await AuthRequestBody.readForm(&request)
            } catch {
                return try await failed(flow, APIErrorMiddleware.authError(for: error, context: context), fields: [:], request: request)
            }
            guard pages.csrf.admits(fields["csrf_token"], headers: request.headers) else {
                // Most often a form left open past a restart of the browser: shown again, with a
                // token that works.
                context.logger.notice("form refused: no valid csrf token", metadata: ["path": "\(request.uri.path)"])
                return try await failed(flow, Self.formExpired, fields: fields, request: request)
            }
            let response: Response
            do {
                response = try await handler(request, context)
            } catch let error as SessionRequired {
                return seeOther(loginRedirect(returningTo: "/auth/account"), setting: [error.clearCookie])
            } catch {
                return try await failed(flow, APIErrorMiddleware.authError(for: error, context: context), fields: fields, request: request)
            }
            return try await succeeded(flow, response, fields: fields, request: request)
        }
    }

    static let otherFormTypes: Set<String> = ["multipart/form-data", "text/plain"]

    static let formExpired = AuthError(status: 403, code: "csrf", message: "This form had expired, so nothing was done. It is ready again: send it once more.")

    /// The browser's answer to a form the endpoint accepted.
    func succeeded(_ flow: FormFlow, _ response: Response, fields: [String: String], request: Request) async throws -> Response {
        let home = safeReturn(request, fields: fields) ?? "/"
        switch flow {
        case .login:
            let body = try await Self.json(of: response)
            if case .bool(true) = body["mfa_required"], case .string(let token) = body["mfa_token"] {
                var values = pageValues(request, fields: fields)
                values["values"] = ["mfa_token": token]
                return pages.response(.mfa, title: "Two-factor login", values: values, requestHeaders: request.headers)
            }
            return seeOther(home, keepingCookiesOf: response)
        case .signup, .loginMFA:
            return seeOther(home, keepingCookiesOf: response)
        case .logout, .logoutAll:
            return seeOther(loginRedirect(notice: "logged_out"), keepingCookiesOf: response)
        case .changePassword:
            return seeOther("/auth/account?notice=password_changed", keepingCookiesOf: response)
        case .forgotPassword:
            return seeOther("/auth/password/forgot?notice=reset_sent")
        case .resetPassword:
            return seeOther(loginRedirect(notice: "password_reset"), keepingCookiesOf: response, clearingLinkAt: "/auth/password/reset")
        case .verifyEmail:
            let signedIn: Bool
            if case .authenticated = try await authenticator.authenticate(request) { signedIn = true } else { signedIn = false }
            return seeOther(signedIn ? "/auth/account?notice=email_verified" : loginRedirect(notice: "email_verified"), clearingLinkAt: "/auth/email/verify")
        case .resendVerification:
            return seeOther("/auth/account?notice=verification_sent")
        case .totpDisable:
            return seeOther("/auth/account?notice=mfa_off")
        case .revokeSession:
            return seeOther("/auth/account?notice=session_revoked", keepingCookiesOf: response)
        case .totpSetup:
            let body = try await Self.json(of: response)
            guard case .string(let secret) = body["secret"], case .string(let svg) = body["qr_svg"] else { throw AuthError.internalError }
            return pages.response(.totpSetup, title: "Set up two-factor login", values: ["secret": secret, "qr_svg": svg], requestHeaders: request.headers)
        case .totpConfirm, .recoveryCodes:
            let body = try await Self.json(of: response)
            guard case .array(let items) = body["recovery_codes"] else { throw AuthError.internalError }
            let codes = items.compactMap { item -> String? in if case .string(let code) = item { code } else { nil } }
            return pages.response(.recoveryCodes, title: "Your recovery codes", values: ["recovery_codes": codes], requestHeaders: request.headers)
        }
    }

    /// The browser's answer to a form the endpoint refused: its page again, with `error`.
    func failed(_ flow: FormFlow, _ error: AuthError, fields: [String: String], request: Request) async throws -> Response {
        var values = pageValues(request, fields: fields)
        values["values"] = fields.filter { Self.keptFields.contains($0.key) }
        if error.fields.isEmpty {
            values["alert"] = error.message
        } else {
            values["errors"] = error.fields
        }
        let status = HTTPResponse.Status(code: error.status)
        var headers = HTTPFields()
        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
        func page(_ page: Pages.Page, _ title: String, _ values: [String: Any]) -> Response {
            pages.response(page, title: title, status: status, values: values, requestHeaders: request.headers, headers: headers)
        }
        switch flow {
        case .login:
            return page(.login, "Log in", values)
        case .signup:
            return page(.signup, "Create your account", values)
        case .logout:
            return page(.logout, "Log out", values)
        case .forgotPassword:
            return page(.forgot, "Reset your password", values)
        case .resetPassword where error.code == "invalid_token", .verifyEmail where error.code == "invalid_token":
            let reset = flow == .resetPassword
            // The kept token is dead: the page must not offer its form again.
            headers.append(HTTPField(name: .setCookie, value: pages.linkToken.clear(path: reset ? "/auth/password/reset" : "/auth/email/verify")))
            return page(.message, "This link has expired", [
                "body": error.message, "link_href": reset ? "/auth/password/forgot" : "/auth/account",
                "link_text": reset ? "Ask for a new reset link" : "Ask for a new verification link",
            ])
        case .resetPassword:
            return page(.reset, "Choose a new password", values)
        case .verifyEmail:
            return page(.verify, "Verify your email address", values)
        case .loginMFA where error.code == "invalid_token":
            // The five minutes are over, or the step was already used: from the password again.
            values["values"] = [:] as [String: String]
            return page(.login, "Log in", values)
        case .loginMFA:
            if error.fields.isEmpty, error.status == 401 {
                values["alert"] = nil
                values["errors"] = ["code": "That code is not right. Use the newest code from your app."]
            }
            return page(.mfa, "Two-factor login", values)
        case .totpConfirm:
            guard case .authenticated(let user, _) = try await authenticator.authenticate(request),
                let setup = try await pendingTOTPSetup(of: user)
            else { return try await account(request, status: status, values: values, headers: headers) }
            values.merge(setup) { $1 }
            return page(.totpSetup, "Set up two-factor login", values)
        case .logoutAll, .changePassword, .resendVerification, .totpSetup, .totpDisable, .recoveryCodes, .revokeSession:
            return try await account(request, status: status, values: values, headers: headers)
        }
    }

    /// The JSON object a handler answered with.
    static func json(of response: Response) async throws -> [String: JSONValue] {
        let collector = BodyCollector()
        try await response.body.write(collector)
        guard case .object(let members) = try JSONValue.parse(Array(collector.buffer.readableBytesView)) else { throw AuthError.internalError }
        return members
    }
}

/// Collects a response body written by a handler (small JSON answers).
final class BodyCollector: ResponseBodyWriter {
    var buffer = ByteBuffer()

    func write(_ buffer: ByteBuffer) async throws {
        self.buffer.writeImmutableBuffer(buffer)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
