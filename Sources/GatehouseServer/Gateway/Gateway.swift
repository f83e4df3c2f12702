import AsyncHTTPClient
import GatehouseCore
import GatehouseStore
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
    /// What a browser is shown for an error answer.
    let pages: Pages

    /// Every request's count, and the metrics of the upstreams and lookups.
    let metrics: RequestMetrics

    init(configuration: GatehouseConfiguration, authenticator: SessionAuthenticator, client: HTTPClient, pages: Pages, metrics: GatehouseMetrics) {
        self.pages = pages
        self.configuration = configuration
        self.policy = GatewayPolicy(configuration: configuration)
        self.metrics = RequestMetrics(metrics: metrics, routes: policy.routes)
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

    /// `answer` as the client of `head` should see it: an HTML page for a browser's
    /// navigation (for a verify endpoint, the front proxy's original request's method decides).
    func answer(_ answer: GatewayAnswer, to head: HTTPRequest, client: ForwardingContext) -> GatewayAnswer {
        guard answer.error != nil else { return answer }
        return pages.forBrowser(answer, method: GatewayPolicy.clientMethod(head, client: client), accept: head.headerFields[.accept])
    }

    /// `answer` to a request whose method and `Accept` are known (a forward that failed).
    func answer(_ answer: GatewayAnswer, to method: HTTPRequest.Method, accept: String?) -> GatewayAnswer {
        answer.error == nil ? answer : pages.forBrowser(answer, method: method.rawValue, accept: accept)
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
