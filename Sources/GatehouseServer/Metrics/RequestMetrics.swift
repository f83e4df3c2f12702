import GatehouseCore
import GatehouseStore

/// Counts each answered request once, for either transport: called with its ``AccessLog``
/// line. The route label is one of Gatehouse's own endpoint paths or a configured route
/// prefix, so that no request can add a series.
struct RequestMetrics: Sendable {
    let metrics: GatehouseMetrics
    let routes: RouteTable

    /// Gatehouse's own endpoints, by path; any other reserved path is `other`.
    static let endpoints: Set<Substring> = [
        "/auth/signup", "/auth/login", "/auth/login/mfa", "/auth/logout", "/auth/logout-all", "/auth/me", "/auth/verify", "/auth/forward",
        "/auth/sessions", "/auth/password", "/auth/password/forgot", "/auth/password/reset", "/auth/email/verify", "/auth/email/resend",
        "/auth/mfa", "/auth/mfa/totp", "/auth/mfa/totp/setup", "/auth/mfa/totp/confirm", "/auth/mfa/totp/disable", "/auth/mfa/recovery-codes",
        "/auth/account", "/healthz", "/readyz", "/metrics", "/openapi.yaml",
    ]

    /// The route label of a request for `path` (no query) on `authority`.
    func route(path: Substring, authority: String?) -> String {
        if GatewayPolicy.isReserved(path) {
            if Self.endpoints.contains(path) { return String(path) }
            if path.hasPrefix("/auth/sessions/") { return path.hasSuffix("/revoke") ? "/auth/sessions/:id/revoke" : "/auth/sessions/:id" }
            return "other"
        }
        return routes.match(host: authority, path: String(path))?.prefix ?? "unmatched"
    }

    /// Counts a request, and a verify request's outcome.
    func count(path: Substring, authority: String?, status: Int, served: AccessLog.Served) {
        let route = route(path: path, authority: authority)
        metrics.request(route: route, served: served.rawValue, status: status)
        if route == "/auth/verify" || route == "/auth/forward" { metrics.verify(Self.verifyOutcome(status: status)) }
    }

    /// What a verify endpoint's status says.
    static func verifyOutcome(status: Int) -> GatehouseMetrics.VerifyOutcome {
        switch status {
        case 200..<300: .allowed
        case 401: .unauthenticated
        case 301, 302, 303, 307, 308: .redirected
        case 403: .forbidden
        default: .error
        }
    }
}
