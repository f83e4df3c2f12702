import GatehouseCore
import HTTPTypes
import Hummingbird

/// `/auth/verify` (nginx `auth_request`) and `/auth/forward` (Traefik/Caddy forward auth),
/// SPEC §2.2, on the router: adapters of the gateway decision. Both fail closed (I5): a 2xx
/// always carries the identity headers, and any error is a refusal.
struct VerifyController: Sendable {
    let gateway: Gateway

    func addRoutes(to router: Router<GatehouseRequestContext>) {
        router.get("/auth/verify", use: answer)
        router.head("/auth/verify", use: answer)
        router.get("/auth/forward", use: answer)
        router.head("/auth/forward", use: answer)
    }

    /// The decision's answer: 200 + identity, or the endpoint's refusal.
    @Sendable func answer(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        let client = gateway.client(request, context: context)
        let decision = await gateway.decide(request.head, client: client, logger: context.logger)
        // A verify endpoint's decision is always an answer; anything else would be a bug, refused.
        let answer = GatewayAnswer(decision, requestId: client.requestId, identity: gateway.identityFields) ?? GatewayAnswer(error: .internalError, requestId: client.requestId)
        // As on the event loop: a refusal a browser will see (Caddy and Traefik pass a
        // non-2xx answer on to the client) is a page for a browser's navigation.
        return Response(gateway.answer(answer, to: request.head, client: client))
    }
}
