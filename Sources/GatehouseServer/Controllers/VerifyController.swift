import GatehouseCore
import HTTPTypes
import Hummingbird

/// `/auth/verify` (nginx `auth_request`) and `/auth/forward` (Traefik/Caddy forward auth),
/// SPEC §2.2. Both fail closed (I5): a 2xx always carries the identity headers, and any
/// error is a refusal.
struct VerifyController: Sendable {
    let gateway: Gateway

    func addRoutes(to router: Router<GatehouseRequestContext>) {
        router.get("/auth/verify", use: verify)
        router.head("/auth/verify", use: verify)
        router.get("/auth/forward", use: forward)
        router.head("/auth/forward", use: forward)
    }

    /// The identity of the request's session, or `nil`; store errors count as "no" here.
    func identity(_ request: Request, context: GatehouseRequestContext) async -> HTTPFields? {
        do {
            guard case .authenticated(let user, _) = try await gateway.authenticator.authenticate(request) else { return nil }
            return gateway.identityFields.verifyAnswer(ForwardedIdentity(userId: user.id, email: user.email))
        } catch {
            context.logger.error("session check failed; refusing", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// 200 + identity, or 401 with `Location` to the login page (nginx turns any other status into 500).
    @Sendable func verify(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        if let identity = await identity(request, context: context) {
            return Response(status: .ok, headers: identity)
        }
        var headers = HTTPFields()
        let trusted = ClientAddress.isTrusted(context.peerAddress, gateway.configuration.trustedProxies)
        let original = trusted ? request.headers[.xOriginalURL].map { Gateway.relativeIfSameHost($0, authority: request.head.authority) } : nil
        headers[.location] = gateway.loginLocation(returningTo: original)
        return .error(.unauthenticated, headers: headers)
    }

    /// 200 + identity, else 302 to the login page for a browser navigation, 401 otherwise.
    @Sendable func forward(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        if let identity = await identity(request, context: context) {
            return Response(status: .ok, headers: identity)
        }
        let trusted = ClientAddress.isTrusted(context.peerAddress, gateway.configuration.trustedProxies)
        let method = (trusted ? request.headers[.xForwardedMethod] : nil) ?? request.method.rawValue
        var original: String?
        if trusted, let host = request.headers[.xForwardedHost] {
            let proto = request.headers[.xForwardedProto].flatMap { ["http", "https"].contains($0) ? $0 : nil } ?? "http"
            original = "\(proto)://\(host)\(request.headers[.xForwardedUri] ?? "/")"
        }
        return gateway.unauthenticated(method: method, accept: request.headers[.accept], returningTo: original)
    }
}
