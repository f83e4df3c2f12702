import AsyncHTTPClient
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging

/// What the router's adapters of the gateway decision share: the policy, the session
/// lookup and the upstream client. The decision itself is ``GatewayPolicy``'s.
struct Gateway: Sendable {
    let configuration: GatehouseConfiguration
    let policy: GatewayPolicy
    let authenticator: SessionAuthenticator
    let client: HTTPClient

    init(configuration: GatehouseConfiguration, authenticator: SessionAuthenticator, client: HTTPClient) {
        self.configuration = configuration
        self.policy = GatewayPolicy(configuration: configuration)
        self.authenticator = authenticator
        self.client = client
    }

    /// The identity header names, validated once.
    var identityFields: IdentityFields { policy.identity }

    /// The decision for a request: ``GatewayPolicy/examine(_:client:)``, then the session
    /// when the decision needs one.
    func decide(_ head: HTTPRequest, client: ForwardingContext, logger: Logger) async -> GatewayDecision {
        switch policy.examine(head, client: client) {
        case .decided(let decision):
            return decision
        case .needsSession(let pending):
            return pending.decide(await authenticator.answer(cookies: pending.cookies, logger: logger))
        }
    }

    /// The request's client facts, computed once per request (see ``APIErrorMiddleware``).
    func client(_ request: Request, context: GatehouseRequestContext) -> ForwardingContext {
        context.forwarding
            ?? ForwardingContext(
                connection: ConnectionFacts(peer: context.peerAddress, trustedProxies: configuration.trustedProxies), headers: request.headers,
                authority: request.head.authority
            )
    }
}

extension Response {
    /// A decision's answer as a Hummingbird response.
    init(_ answer: GatewayAnswer) {
        self.init(
            status: HTTPResponse.Status(code: answer.status), headers: answer.headers,
            body: answer.body.isEmpty ? .init() : .init(byteBuffer: ByteBuffer(string: answer.body))
        )
    }
}
