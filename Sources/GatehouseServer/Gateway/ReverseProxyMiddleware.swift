import AsyncHTTPClient
import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// The reverse proxy of SPEC §2.3: every request outside Gatehouse's own paths is routed
/// by the route table and forwarded to its upstream, streaming both ways.
struct ReverseProxyMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext
    let gateway: Gateway

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let target = request.head.path ?? "/"
        if Gateway.isReserved(target.prefix { $0 != "?" }) { return try await next(request, context) }
        let forwarding = ForwardingContext(peer: context.peerAddress, headers: request.headers, authority: request.head.authority, trustedProxies: gateway.configuration.trustedProxies)
        var echo = HTTPFields()
        echo[.xRequestId] = forwarding.requestId
        // RFC 9112 §3.2: more than one Host is a 400; routing and the upstream could
        // otherwise read different hosts.
        if request.headers[.host] != nil {
            return .error(AuthError(status: 400, code: "invalid_request", message: "More than one Host header."), headers: echo)
        }
        switch try await gateway.route(target: target, authority: request.head.authority, headers: request.headers) {
        case .reserved:
            return try await next(request, context)
        case .invalidPath:
            return .error(AuthError(status: 400, code: "invalid_path", message: "The request path is not acceptable."), headers: echo)
        case .noRoute:
            return .error(.notFound, headers: echo)
        case .unauthenticated:
            return gateway.unauthenticated(method: request.method.rawValue, accept: request.headers[.accept], returningTo: target, headers: echo)
        case .forward(let upstream, let path, let query, let user):
            return try await forward(request, path: path, query: query, upstream: upstream, user: user, forwarding: forwarding, context: context)
        }
    }

    func forward(
        _ request: Request, path: String, query: Substring, upstream: UpstreamTarget, user: ForwardedIdentity?, forwarding: ForwardingContext, context: Context
    ) async throws -> Response {
        var outgoing = HTTPClientRequest(url: upstream.url(path: path, query: query))
        outgoing.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        // Identity headers stripped in every spelling, then set from the session (I5).
        outgoing.headers = ProxyHeaders.upstreamRequest(
            request.headers, host: request.head.authority, identity: gateway.identityFields, user: user,
            cookieName: gateway.configuration.cookie.name, client: forwarding
        )
        if let length = request.headers[.contentLength].flatMap(Int64.init) {
            outgoing.body = .stream(request.body, length: .known(length))
        } else if request.headers[.transferEncoding] != nil {
            outgoing.body = .stream(request.body, length: .unknown)
        }
        let response: HTTPClientResponse
        do {
            response = try await gateway.client.execute(outgoing, timeout: .nanoseconds(Int64(gateway.configuration.proxy.responseTimeout.milliseconds) * 1_000_000))
        } catch {
            return upstreamFailure(error, forwarding: forwarding, context: context)
        }
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        let headers = HTTPFields(ProxyHeaders.clientResponse(response.headers, requestId: forwarding.requestId), splitCookie: false)
        return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: response.body))
    }

    /// Every upstream failure is a JSON error, never a hang: 504 for too slow, 502 otherwise.
    func upstreamFailure(_ error: any Error, forwarding: ForwardingContext, context: Context) -> Response {
        var echo = HTTPFields()
        echo[.xRequestId] = forwarding.requestId
        let timedOut = (error as? HTTPClientError).map { $0 == .deadlineExceeded || $0 == .readTimeout } ?? false
        context.logger.warning("upstream failed", metadata: ["error": "\(error)", "request_id": "\(forwarding.requestId)"])
        return .error(timedOut ? .upstreamTimeout : .upstreamUnavailable, headers: echo)
    }
}
