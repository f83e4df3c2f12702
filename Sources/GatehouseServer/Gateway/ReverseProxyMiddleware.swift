import AsyncHTTPClient
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// The reverse proxy of SPEC §2.3 on the router: an adapter of the gateway decision. Every
/// request outside Gatehouse's own paths is decided by ``GatewayPolicy``; a forward streams
/// both ways through the upstream client, anything else is the decision's answer.
struct ReverseProxyMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext
    let gateway: Gateway

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if GatewayPolicy.isReserved((request.head.path ?? "/").prefix { $0 != "?" }) { return try await next(request, context) }
        let client = gateway.client(request, context: context)
        let decision = await gateway.decide(request.head, client: client, logger: context.logger)
        switch decision {
        case .reserved:
            return try await next(request, context)
        case .forward(let upstream):
            return await forward(request, to: upstream, context: context)
        default:
            // Every other decision is an answer (`GatewayAnswer` is `nil` only for the two above).
            let answer = GatewayAnswer(decision, requestId: client.requestId, identity: gateway.identityFields)!
            return Response(gateway.answer(answer, to: request.head, client: client))
        }
    }

    /// Sends the decided request head with the client's body, streaming the answer back.
    func forward(_ request: Request, to upstream: UpstreamRequestHead, context: Context) async -> Response {
        var outgoing = HTTPClientRequest(url: upstream.url)
        outgoing.method = NIOHTTP1.HTTPMethod(rawValue: upstream.method.rawValue)
        outgoing.headers = upstream.headers
        if let length = request.headers[.contentLength].flatMap(Int64.init) {
            outgoing.body = .stream(request.body, length: .known(length))
        } else if request.headers[.transferEncoding] != nil {
            outgoing.body = .stream(request.body, length: .unknown)
        }
        let response: HTTPClientResponse
        let sent = ContinuousClock.now
        do {
            response = try await gateway.client.execute(outgoing, timeout: .nanoseconds(Int64(gateway.configuration.proxy.responseTimeout.milliseconds) * 1_000_000))
            gateway.metrics.metrics.upstreamResponse(upstream.upstream.name, took: .now - sent)
        } catch {
            // Every upstream failure is a JSON error, never a hang: 504 for too slow, 502 otherwise.
            let timedOut = (error as? HTTPClientError).map { $0 == .deadlineExceeded || $0 == .readTimeout } ?? false
            context.logger.warning("upstream failed", metadata: ["error": "\(error)"])
            let answer = GatewayAnswer(error: .upstreamFailure(timedOut: timedOut), requestId: upstream.requestId)
            return Response(gateway.answer(answer, to: request.method, accept: request.headers[.accept]))
        }
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        let headers = HTTPFields(ProxyHeaders.clientResponse(response.headers, requestId: upstream.requestId), splitCookie: false)
        return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: response.body))
    }
}
