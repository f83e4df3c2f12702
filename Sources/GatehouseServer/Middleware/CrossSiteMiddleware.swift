import Foundation
import GatehouseCore
import GatehouseStore
import Hummingbird

/// Refuses state changes to Gatehouse's own `/auth/*` endpoints sent from another site's page
/// (``CrossSitePolicy``, SPEC §2.4): logout, and every later cookie-authenticated change,
/// and login and signup too, which carry no session but would log the victim in to an
/// account the attacker controls (login CSRF). 403 `csrf`, nothing done. Proxied routes get
/// the same check in the gateway decision.
struct CrossSiteMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext
    let policy: CrossSitePolicy
    let store: any AuthStore
    /// Caps the audit rows one address's refusals write (a scripted flood of forged origins
    /// must not turn into a flood of writes): the first few per minute are audited.
    let audits: RateLimiter
    /// Whose `X-Forwarded-For` names the client.
    let trustedProxies: [CIDR]

    static let auditedPerMinute = RateLimit(10, per: .seconds(60))

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard CrossSitePolicy.changesState(request.method), path.hasPrefix("/auth/"),
            policy.isCrossSite(request.headers, host: context.forwarding?.host ?? request.head.authority)
        else { return try await next(request, context) }
        let client = ClientInfo(request, context: context, trustedProxies: trustedProxies)
        if await audits.check([RateCheck("csrf_audit", Self.auditedPerMinute, subject: client.ip)].compactMap { $0 }) == .allowed {
            try await store.audit(AuditEvent(at: Date(), kind: .crossSiteRefused, outcome: .failure, reason: path, ip: client.ip, userAgent: client.userAgent))
        }
        context.logger.notice("cross-site request refused", metadata: ["path": "\(path)", "origin": "\(request.headers[.origin] ?? "-")"])
        throw AuthError.crossSite
    }
}
