import AsyncHTTPClient
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// The parts of the gateway shared by the reverse proxy and the verify endpoints: routing,
/// the login redirect, and the upstream client.
struct Gateway: Sendable {
    let configuration: GatehouseConfiguration
    let authenticator: SessionAuthenticator
    let routes: RouteTable
    let upstreams: [String: UpstreamTarget]
    let redirects: RedirectValidator
    let client: HTTPClient
    /// The identity header names, validated once.
    let identityFields: IdentityFields

    init(configuration: GatehouseConfiguration, authenticator: SessionAuthenticator, client: HTTPClient) {
        self.configuration = configuration
        self.authenticator = authenticator
        self.routes = RouteTable(configuration.routes)
        self.upstreams = configuration.upstreams.compactMapValues(UpstreamTarget.init)
        self.redirects = RedirectValidator(allowedHosts: configuration.allowedRedirectHosts)
        self.client = client
        self.identityFields = IdentityFields(configuration.identityHeaders)
    }

    /// Where a request to a proxied path goes, decided once for plain HTTP and WebSockets.
    enum Routing {
        /// One of Gatehouse's own paths: not proxied.
        case reserved
        /// A path no route may see (400).
        case invalidPath
        /// No route matches (404).
        case noRoute
        /// The route needs a session and there is none.
        case unauthenticated
        /// Forward to `upstream` at `path` (normalised, prefix stripped) with `query`, as `user`.
        case forward(upstream: UpstreamTarget, path: String, query: Substring, user: ForwardedIdentity?)
    }

    /// Where a request target goes before any session is looked at.
    enum Resolution {
        /// One of Gatehouse's own paths: not proxied.
        case reserved
        /// A path no route may see (400).
        case invalidPath
        /// No route matches (404).
        case noRoute
        /// `route` matches; its upstream gets `path` (normalised, prefix stripped) and `query`.
        case matched(route: RouteConfiguration, upstream: UpstreamTarget, path: String, query: Substring)
    }

    /// Resolves a request target (path and query): normalisation and the route table. Pure,
    /// so the event-loop fast path and the middleware route alike.
    func resolve(target: String, authority: String?) -> Resolution {
        let queryStart = target.firstIndex(of: "?") ?? target.endIndex
        let rawPath = target[..<queryStart]
        if Self.isReserved(rawPath) { return .reserved }
        // Routing sees only the normalised path; the query never takes part.
        guard case .success(let path) = PathNormalizer.normalize(rawPath) else { return .invalidPath }
        if Self.isReserved(path) { return .reserved }
        guard let route = routes.match(host: authority, path: path), let upstream = upstreams[route.upstream] else { return .noRoute }
        return .matched(route: route, upstream: upstream, path: RouteTable.forwardedPath(path, route: route), query: target[queryStart...])
    }

    /// Routes a request: ``resolve(target:authority:)``, then the route's policy. Store errors
    /// propagate, so a failure never forwards anything (I5).
    func route(target: String, authority: String?, headers: HTTPFields) async throws -> Routing {
        switch resolve(target: target, authority: authority) {
        case .reserved: return .reserved
        case .invalidPath: return .invalidPath
        case .noRoute: return .noRoute
        case .matched(let route, let upstream, let path, let query):
            var user: ForwardedIdentity?
            if route.auth == .required {
                guard case .authenticated(let found, _) = try await authenticator.authenticate(headers: headers) else { return .unauthenticated }
                user = ForwardedIdentity(userId: found.id, email: found.email)
            }
            return .forward(upstream: upstream, path: path, query: query, user: user)
        }
    }

    /// Paths Gatehouse answers itself; never proxied.
    static func isReserved(_ path: some StringProtocol) -> Bool {
        path == "/auth" || path.hasPrefix("/auth/") || path == "/healthz" || path == "/readyz"
    }

    /// GET or HEAD asking for HTML: a browser navigating, who should see the login page.
    static func isBrowserNavigation(method: String, accept: String?) -> Bool {
        (method == "GET" || method == "HEAD") && (accept ?? "").lowercased().contains("text/html")
    }

    /// `login_url` with `rd` set to `target` when it is a safe redirect.
    func loginLocation(returningTo target: String?) -> String {
        let separator = configuration.loginURL.contains("?") ? "&" : "?"
        guard let target, let safe = redirects.validate(target) else { return configuration.loginURL }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return configuration.loginURL + separator + "rd=" + (safe.addingPercentEncoding(withAllowedCharacters: allowed) ?? "/")
    }

    /// The answer to a request without a valid session: 302 to the login page for a browser
    /// navigation, else 401 JSON. Never a 2xx (I5).
    func unauthenticated(method: String, accept: String?, returningTo target: String?, headers: HTTPFields = [:]) -> Response {
        if Self.isBrowserNavigation(method: method, accept: accept) {
            var fields = headers
            fields[.location] = loginLocation(returningTo: target)
            fields[.cacheControl] = "no-store"
            return Response(status: .found, headers: fields)
        }
        return .error(.unauthenticated, headers: headers)
    }

    /// Turns an absolute URL on the request's own host into a relative one (always a safe
    /// redirect); leaves anything else to the validator.
    static func relativeIfSameHost(_ url: String, authority: String?) -> String {
        guard let authority, let components = URLComponents(string: url), let host = components.host,
            components.scheme == "http" || components.scheme == "https"
        else { return url }
        let hostAndPort = components.port.map { "\(host):\($0)" } ?? host
        guard hostAndPort.lowercased() == authority.lowercased() else { return url }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        return path + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
    }
}

extension HTTPField.Name {
    static let location = HTTPField.Name("Location")!
}
