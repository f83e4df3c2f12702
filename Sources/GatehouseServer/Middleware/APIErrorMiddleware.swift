import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers

/// Computes the request's client facts once, turns every error into the API's JSON error
/// body, and writes the request's ``AccessLog`` line (`served=router`).
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext
    /// Whose `X-Forwarded-*` and `X-Request-Id` are believed.
    let trustedProxies: [CIDR]
    /// What a browser is shown for an error.
    let pages: Pages
    /// Where the request is counted.
    let metrics: RequestMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        // The request's client facts and its one id, computed once: every log line of the
        // request carries this id, and so do the upstream and the client.
        let forwarding = ForwardingContext(
            connection: ConnectionFacts(peer: context.peerAddress, trustedProxies: trustedProxies), headers: request.headers,
            authority: request.head.authority
        )
        var context = context
        context.forwarding = forwarding
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "request_id"] = "\(forwarding.requestId)"
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as SessionRequired {
            var headers = HTTPFields()
            headers[.setCookie] = error.clearCookie
            response = errorResponse(.unauthenticated, headers: headers, request: request, requestId: forwarding.requestId)
        } catch {
            response = errorResponse(Self.authError(for: error, context: context), request: request, requestId: forwarding.requestId)
        }
        if response.headers[.xRequestId] == nil { response.headers[.xRequestId] = forwarding.requestId }
        // Gatehouse's own answers (never an upstream's) carry the security headers.
        if GatewayPolicy.isReserved(request.uri.path) { SecurityHeaders.apply(to: &response.headers) }
        AccessLog.request(
            context.logger, method: request.method, path: Substring(request.uri.path), authority: request.head.authority, status: Int(response.status.code),
            started: start, requestId: nil, served: .router, metrics: metrics
        )
        return response
    }

    /// The JSON error, or for a browser's navigation its page.
    func errorResponse(_ error: AuthError, headers: HTTPFields = [:], request: Request, requestId: String) -> Response {
        guard GatewayPolicy.isBrowserNavigation(method: request.method.rawValue, accept: request.headers[.accept]) else { return .error(error, headers: headers) }
        var headers = headers
        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
        return pages.html(pages.errorDocument(error, requestId: requestId), status: HTTPResponse.Status(code: error.status), headers: headers)
    }

    static let overloadWarnings = OncePerSecond()

    static func authError(for error: any Error, context: Context) -> AuthError {
        switch error {
        case let error as AuthError:
            return error
        case PasswordHasherError.overloaded:
            // Once a second at most: a flood of refusals must not become a flood of log lines
            // (each refusal has its access line).
            if Self.overloadWarnings.admit() { context.logger.warning("password hashing saturated; answering 503 overloaded") }
            return .overloaded
        case let error as HTTPError:
            switch error.status {
            case .notFound: return .notFound
            case .contentTooLarge: return .payloadTooLarge(limit: AuthRequestBody.maximumSize)
            case .badRequest: return .malformedBody("The request could not be read.")
            default: return AuthError(status: Int(error.status.code), code: "http_\(error.status.code)", message: error.status.reasonPhrase)
            }
        default:
            // I5: an unexpected failure is a 5xx, never a success. Details to the log only.
            // GRDB keeps statement arguments out of its error descriptions, so this holds no secret.
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return .internalError
        }
    }
}

/// Lets one event through per second (a log line that could otherwise repeat per request).
final class OncePerSecond: Sendable {
    private let last = NIOLockedValueBox(ContinuousClock.now - .seconds(2))

    /// Whether the event may happen now.
    func admit() -> Bool {
        let now = ContinuousClock.now
        return last.withLockedValue { last in
            guard now - last >= .seconds(1) else { return false }
            last = now
            return true
        }
    }
}
