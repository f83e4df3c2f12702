import Foundation
import HTTPTypes
import NIOHTTP1

/// What a connection tells about every request on it, decided once per connection: the TCP
/// peer and whether it is one of `trusted_proxies` (whose `X-Forwarded-*` are believed).
public struct ConnectionFacts: Sendable, Equatable {
    /// The peer's IP address (`unknown` without a socket).
    public let peer: String
    /// Whether the peer is a trusted proxy.
    public let trusted: Bool

    /// The facts for `peer` under `trustedProxies`.
    public init(peer: String, trustedProxies: [CIDR]) {
        self.peer = peer
        self.trusted = ClientAddress.isTrusted(peer, trustedProxies)
    }
}

/// What looking up the request's session found: the one input of the gateway decision that
/// needs a store.
public enum SessionAnswer: Sendable, Equatable {
    /// No session cookie at all.
    case anonymous
    /// A cookie that is garbage, unknown, revoked, expired, or of a disabled user.
    case rejected
    /// A live session of this identity.
    case live(Identity)
    /// The stores could not answer (fail closed, I5).
    case failed
}

/// The request an upstream receives: target, method, path and every header, exactly.
public struct UpstreamRequestHead: Sendable {
    /// Where it goes.
    public let upstream: UpstreamTarget
    /// The client's method.
    public let method: HTTPRequest.Method
    /// The request target on the upstream: its base path, the forwarded path and the query.
    public let uri: String
    /// The headers (identity set from the session after every client copy was removed, I5),
    /// `Host` first.
    public let headers: HTTPHeaders
    /// The request's id, sent as `X-Request-Id` and echoed to the client.
    public let requestId: String

    /// The absolute URL, for clients that take one.
    public var url: String { "\(upstream.scheme)://\(upstream.host):\(upstream.port)\(uri)" }
}

/// The one answer of the gateway to a request (SPEC §2.2, §2.3): every transport renders it,
/// none decides it.
public enum GatewayDecision: Sendable {
    /// One of Gatehouse's own endpoints, other than verify: the router's controllers answer.
    case reserved
    /// Refused before any session matters: two `Host` headers, an unacceptable path, no
    /// route (400/404), or the stores failing (500).
    case refused(AuthError)
    /// No usable session, a browser navigating: `302` to the login page.
    case loginRedirect(location: String)
    /// No usable session otherwise: `401`, with `Location` to the login page for verify.
    case unauthorized(location: String?)
    /// A session that the route's policy does not admit: `403` with the policy's code.
    case forbidden(AuthError)
    /// A verify endpoint and a live session: `200` with the identity headers.
    case verified(Identity)
    /// Forward this request to the upstream.
    case forward(UpstreamRequestHead)
}

/// The decision, once the session is known: what ``GatewayPolicy/examine(_:client:)`` gives
/// for a request whose answer depends on its session.
public struct PendingDecision: Sendable {
    fileprivate enum Kind: Sendable {
        /// `/auth/verify`: 401 with `Location` without a session.
        case verify(location: String)
        /// `/auth/forward`: 302 for a browser navigation, else 401.
        case forward(browser: Bool, location: String)
        /// A proxied route whose policy needs a session.
        case proxy(route: RouteConfiguration, forward: @Sendable (Identity) -> UpstreamRequestHead, refusal: GatewayDecision)
    }

    fileprivate let kind: Kind
    /// `require_verified_email`: a live session of an unverified user is not admitted.
    fileprivate var requireVerifiedEmail = false
    /// The session cookies to look up: only these count.
    public let cookies: [Substring]
    /// The upstream a live session would be forwarded to (`nil` for the verify endpoints), so
    /// a transport that cannot reach it can hand the request on before any lookup.
    public let upstream: UpstreamTarget?

    fileprivate init(kind: Kind, cookies: [Substring], upstream: UpstreamTarget? = nil) {
        self.kind = kind
        self.cookies = cookies
        self.upstream = upstream
    }

    /// The decision given what the session lookup found. Pure.
    public func decide(_ session: SessionAnswer) -> GatewayDecision {
        switch kind {
        case .verify(let location):
            // nginx passes only 401 and 403 on; the spec asks 401 of an unverified user too.
            guard case .live(let identity) = session, admission(identity) == nil else { return .unauthorized(location: location) }
            return .verified(identity)
        case .forward(let browser, let location):
            guard case .live(let identity) = session else { return browser ? .loginRedirect(location: location) : .unauthorized(location: nil) }
            // Forward auth passes the answer to the client: the 403 says what to do.
            if let denial = admission(identity) { return .forbidden(denial) }
            return .verified(identity)
        case .proxy(let route, let forward, let refusal):
            switch session {
            case .failed: return .refused(.internalError)
            case .anonymous, .rejected: return refusal
            case .live(let identity):
                if let denial = admission(identity) ?? GatewayPolicy.denial(of: identity, by: route) { return .forbidden(denial) }
                return .forward(forward(identity))
            }
        }
    }
}

extension PendingDecision {
    /// Why a live session is not admitted anywhere a session is required, or `nil`.
    fileprivate func admission(_ identity: Identity) -> AuthError? {
        requireVerifiedEmail && !identity.emailVerified ? .emailNotVerified : nil
    }

    /// The same decision under `require_verified_email`.
    fileprivate func requiring(verifiedEmail: Bool) -> PendingDecision {
        var decision = self
        decision.requireVerifiedEmail = verifiedEmail
        return decision
    }
}

/// What the gateway does next with a request.
public enum GatewayStep: Sendable {
    /// Decided without a session.
    case decided(GatewayDecision)
    /// Look the session up, then ``PendingDecision/decide(_:)``.
    case needsSession(PendingDecision)
}

/// The gateway's policy (SPEC §2.2, §2.3) as one pure function of the request head, the
/// connection's facts and the session: ``examine(_:client:)`` then, when it asks for one,
/// ``PendingDecision/decide(_:)``. The event-loop fast path, the router middleware, the verify
/// endpoints and the WebSocket upgrade all render what it decides.
public struct GatewayPolicy: Sendable {
    /// The route table.
    public let routes: RouteTable
    /// Upstreams by name.
    public let upstreams: [String: UpstreamTarget]
    /// Which `rd` targets are followed.
    public let redirects: RedirectValidator
    /// `login_url`.
    public let loginURL: String
    /// The session cookie's name.
    public let cookieName: String
    /// The identity header names.
    public let identity: IdentityFields
    /// Which state changes are refused as cross-site.
    public let crossSite: CrossSitePolicy
    /// `require_verified_email`.
    public let requireVerifiedEmail: Bool

    /// The policy of a configuration.
    public init(configuration: GatehouseConfiguration) {
        routes = RouteTable(configuration.routes, caseInsensitive: configuration.proxy.caseInsensitivePaths)
        upstreams = configuration.upstreams
        redirects = RedirectValidator(allowedHosts: configuration.allowedRedirectHosts)
        loginURL = configuration.loginURL
        cookieName = configuration.cookie.effectiveName
        identity = IdentityFields(configuration.identityHeaders)
        crossSite = CrossSitePolicy(publicURL: configuration.publicURL, allowedOrigins: configuration.allowedOrigins)
        requireVerifiedEmail = configuration.requireVerifiedEmail
    }

    // MARK: The decision

    /// The first half of the decision: everything that needs no session, or what to decide
    /// once the session is known. `client` carries the connection's trust and the request's id.
    public func examine(_ request: HTTPRequest, client: ForwardingContext) -> GatewayStep {
        let target = request.path ?? "/"
        if let endpoint = VerifyEndpoint(target: target, method: request.method) {
            // The front proxy's original request (nginx `X-Original-Method`, forward auth's
            // `X-Forwarded-Method`, trusted peers only) gets the cross-site check of a proxied
            // `auth: required` route: 403 passes through nginx and Caddy to the client.
            let fields = request.headerFields
            if let original = Self.originalMethod(endpoint, fields, client: client),
                CrossSitePolicy.changesState(HTTPRequest.Method(original.uppercased()) ?? .post), crossSite.isCrossSite(fields, host: client.host)
            {
                return .decided(.forbidden(.crossSite))
            }
            return .needsSession(verifyDecision(endpoint, request, client: client).requiring(verifiedEmail: requireVerifiedEmail))
        }
        // RFC 9112 §3.2: more than one Host is a 400; routing and the upstream could
        // otherwise read different hosts.
        if request.headerFields[.host] != nil, !Self.isReserved(target.prefix { $0 != "?" }) {
            return .decided(.refused(AuthError(status: 400, code: "invalid_request", message: "More than one Host header.")))
        }
        switch resolve(target: target, authority: request.authority) {
        case .reserved:
            return .decided(.reserved)
        case .invalidPath:
            return .decided(.refused(AuthError(status: 400, code: "invalid_path", message: "The request path is not acceptable.")))
        case .noRoute:
            return .decided(.refused(.notFound))
        case .matched(let route, let upstream, let path, let query):
            if isCrossSiteUpgrade(request, client: client) { return .decided(.forbidden(.crossSite)) }
            let forward: @Sendable (Identity?) -> UpstreamRequestHead = { [identity] user in
                let headers = ProxyHeaders.upstreamRequest(
                    request.headerFields, host: request.authority ?? upstream.address, identity: identity, user: user,
                    cookieName: cookieName, client: client
                )
                return UpstreamRequestHead(upstream: upstream, method: request.method, uri: upstream.basePath + path + query, headers: headers, requestId: client.requestId)
            }
            switch route.auth {
            case .none:
                return .decided(.forward(forward(nil)))
            case .required:
                // SPEC §2.4: a state change carrying the user's cookie from another site's
                // page is refused before the session is looked at; nothing reaches the upstream.
                if route.csrf, CrossSitePolicy.changesState(request.method), crossSite.isCrossSite(request.headerFields, host: client.host) {
                    return .decided(.forbidden(.crossSite))
                }
                let refusal: GatewayDecision =
                    Self.isBrowserNavigation(method: request.method.rawValue, accept: request.headerFields[.accept])
                    ? .loginRedirect(location: loginLocation(returningTo: target)) : .unauthorized(location: nil)
                let pending = PendingDecision(kind: .proxy(route: route, forward: { forward($0) }, refusal: refusal), cookies: sessionCookies(request), upstream: upstream)
                return .needsSession(pending.requiring(verifiedEmail: requireVerifiedEmail))
            }
        }
    }

    /// Whether `request` is a WebSocket upgrade sent from another site (``CrossSitePolicy``).
    /// Browsers send `Origin` on every upgrade and the victim's cookies with it, so a page
    /// elsewhere could otherwise talk to the app as the user (cross-site WebSocket hijacking),
    /// on every route: an upgrade is a state change whatever its method.
    public func isCrossSiteUpgrade(_ request: HTTPRequest, client: ForwardingContext) -> Bool {
        guard let upgrade = request.headerFields[.upgrade], upgrade.lowercased().contains("websocket") else { return false }
        return crossSite.isCrossSite(request.headerFields, host: client.host)
    }

    /// Why a live session may not pass a route, or `nil`: the place for per-route policies
    /// (verified email, MFA, groups). `auth: required` admits every live session.
    static func denial(of identity: Identity, by route: RouteConfiguration) -> AuthError? {
        switch route.auth {
        case .none, .required: return nil
        }
    }

    private enum VerifyEndpoint {
        case verify, forward

        init?(target: String, method: HTTPRequest.Method) {
            guard method == .get || method == .head else { return nil }
            for (endpoint, path) in [(Self.verify, "/auth/verify"), (.forward, "/auth/forward")] where target.hasPrefix(path) {
                let rest = target.utf8.dropFirst(path.utf8.count)
                if rest.isEmpty || rest.first == UInt8(ascii: "?") {
                    self = endpoint
                    return
                }
            }
            return nil
        }
    }

    /// The method of the front proxy's original request (nginx `X-Original-Method`, forward
    /// auth's `X-Forwarded-Method`), believed from a trusted peer only.
    private static func originalMethod(_ endpoint: VerifyEndpoint, _ fields: HTTPFields, client: ForwardingContext) -> String? {
        client.trusted ? (endpoint == .verify ? fields[.xOriginalMethod] : fields[.xForwardedMethod]) : nil
    }

    /// The method of the request the client made: for a verify endpoint asked by a trusted
    /// proxy, the original request's (what decides whether a browser is navigating); else the
    /// request's own.
    public static func clientMethod(_ request: HTTPRequest, client: ForwardingContext) -> String {
        guard let endpoint = VerifyEndpoint(target: request.path ?? "/", method: request.method) else { return request.method.rawValue }
        return originalMethod(endpoint, request.headerFields, client: client)?.uppercased() ?? request.method.rawValue
    }

    /// Whether `target` (path and query) is `/auth/verify` or `/auth/forward` for GET/HEAD.
    public static func isVerifyEndpoint(_ target: String, method: HTTPRequest.Method) -> Bool {
        VerifyEndpoint(target: target, method: method) != nil
    }

    /// The verify endpoints' refusals: where the login page sends the user back to comes
    /// from `X-Original-URL` (`/auth/verify`, nginx) or `X-Forwarded-*` (`/auth/forward`,
    /// Traefik and Caddy), believed only from a trusted proxy.
    private func verifyDecision(_ endpoint: VerifyEndpoint, _ request: HTTPRequest, client: ForwardingContext) -> PendingDecision {
        let fields = request.headerFields
        let cookies = sessionCookies(request)
        switch endpoint {
        case .verify:
            let original = client.trusted ? fields[.xOriginalURL].map { Self.relativeIfSameHost($0, authority: request.authority) } : nil
            return PendingDecision(kind: .verify(location: loginLocation(returningTo: original)), cookies: cookies)
        case .forward:
            let method = Self.originalMethod(.forward, fields, client: client) ?? request.method.rawValue
            var original: String?
            if client.trusted, let host = fields[.xForwardedHost] {
                // `client.proto` is the trusted proxy's scheme, lowercased, as the proxy path sends it.
                original = "\(client.proto)://\(host)\(fields[.xForwardedUri] ?? "/")"
            }
            let browser = Self.isBrowserNavigation(method: method, accept: fields[.accept])
            return PendingDecision(kind: .forward(browser: browser, location: loginLocation(returningTo: original)), cookies: cookies)
        }
    }

    /// The values of the request's session cookies, in order.
    public func sessionCookies(_ request: HTTPRequest) -> [Substring] {
        CookieHeader.values(named: cookieName, in: request.headerFields[values: .cookie])
    }

    // MARK: Routing

    /// Where a request target goes before any session is looked at.
    public enum Resolution: Sendable {
        /// One of Gatehouse's own paths: not proxied.
        case reserved
        /// A path no route may see (400).
        case invalidPath
        /// No route matches (404).
        case noRoute
        /// `route` matches; its upstream gets `path` (normalised, prefix stripped) and `query`.
        case matched(route: RouteConfiguration, upstream: UpstreamTarget, path: String, query: Substring)
    }

    /// Resolves a request target (path and query): normalisation and the route table.
    public func resolve(target: String, authority: String?) -> Resolution {
        let queryStart = target.firstIndex(of: "?") ?? target.endIndex
        let rawPath = target[..<queryStart]
        if Self.isReserved(rawPath) { return .reserved }
        // Routing sees only the normalised path; the query never takes part.
        guard case .success(let path) = PathNormalizer.normalize(rawPath) else { return .invalidPath }
        if Self.isReserved(path) { return .reserved }
        guard let route = routes.match(host: authority, path: path), let upstream = upstreams[route.upstream] else { return .noRoute }
        return .matched(route: route, upstream: upstream, path: RouteTable.forwardedPath(path, route: route), query: target[queryStart...])
    }

    /// Paths Gatehouse answers itself; never proxied.
    public static func isReserved(_ path: some StringProtocol) -> Bool {
        path == "/auth" || path.hasPrefix("/auth/") || path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/openapi.yaml"
    }

    /// GET or HEAD asking for HTML: a browser navigating, who should see the login page.
    public static func isBrowserNavigation(method: String, accept: String?) -> Bool {
        (method == "GET" || method == "HEAD") && (accept ?? "").lowercased().contains("text/html")
    }

    /// `login_url` with `rd` set to `target` when it is a safe redirect.
    public func loginLocation(returningTo target: String?) -> String {
        let separator = loginURL.contains("?") ? "&" : "?"
        guard let target, let safe = redirects.validate(target) else { return loginURL }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return loginURL + separator + "rd=" + (safe.addingPercentEncoding(withAllowedCharacters: allowed) ?? "/")
    }

    /// Turns an absolute URL on the request's own host into a relative one (always a safe
    /// redirect); leaves anything else to the validator.
    public static func relativeIfSameHost(_ url: String, authority: String?) -> String {
        guard let authority, let components = URLComponents(string: url), let host = components.host,
            components.scheme == "http" || components.scheme == "https"
        else { return url }
        let hostAndPort = components.port.map { "\(host):\($0)" } ?? host
        guard hostAndPort.lowercased() == authority.lowercased() else { return url }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        return path + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
    }
}

/// A decision other than forwarding, as the bytes of a response: the same for every transport.
public struct GatewayAnswer: Sendable {
    /// The status code.
    public let status: Int
    /// The headers (no `Content-Length`, no `Date`: the transport adds them).
    public let headers: HTTPFields
    /// The body (JSON), empty for none.
    public let body: String
    /// The error the answer tells of, if it is one (a browser is shown it as a page).
    public let error: AuthError?

    /// The answer for `decision` to a request with `requestId`; `nil` for ``GatewayDecision/reserved``
    /// and ``GatewayDecision/forward(_:)``, which are not answers.
    public init?(_ decision: GatewayDecision, requestId: String, identity: IdentityFields) {
        var headers = HTTPFields()
        headers.reserveCapacity(6)
        switch decision {
        case .reserved, .forward:
            return nil
        case .verified(let user):
            // Never cached (I5): the only 2xx a verify endpoint gives carries the identity.
            headers = identity.verifyAnswer(user)
            self.init(status: 200, headers: headers, body: "", requestId: requestId, browserFacing: false)
        case .loginRedirect(let location):
            headers[.location] = location
            headers[.cacheControl] = "no-store"
            self.init(status: 302, headers: headers, body: "", requestId: requestId)
        case .unauthorized(let location):
            if let location { headers[.location] = location }
            self.init(error: .unauthenticated, headers: headers, requestId: requestId)
        case .refused(let error), .forbidden(let error):
            self.init(error: error, headers: headers, requestId: requestId)
        }
    }

    /// The documented JSON body of an error, with `headers`.
    public init(error: AuthError, headers: HTTPFields = [:], requestId: String) {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        if let retryAfter = error.retryAfter { fields[.retryAfter] = String(retryAfter) }
        self.init(status: error.status, headers: fields, body: error.json.string, requestId: requestId, error: error)
    }

    /// An answer as it is written, for a transport that renders it otherwise (an HTML page).
    public init(status: Int, headers: HTTPFields, body: String, error: AuthError?) {
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error
    }

    /// `browserFacing` false only for a verify endpoint's 200, which the front proxy reads
    /// and no browser sees (nginx never passes an `auth_request` answer on; forward auth copies
    /// only the identity headers): the security headers would be bytes on the hottest answer
    /// that protect nothing.
    private init(status: Int, headers: HTTPFields, body: String, requestId: String, browserFacing: Bool = true, error: AuthError? = nil) {
        var fields = headers
        if browserFacing { SecurityHeaders.apply(to: &fields) }
        fields[.xRequestId] = requestId
        self.init(status: status, headers: fields, body: body, error: error)
    }
}

extension AuthError {
    /// An upstream that failed before its response began: 504 when it was too slow, else 502.
    public static func upstreamFailure(timedOut: Bool) -> AuthError {
        timedOut ? .upstreamTimeout : .upstreamUnavailable
    }
}

