import GatehouseCore
import GatehouseStore
import Hummingbird
import Logging

/// Turns every error into the API's JSON error body, and logs one line per request.
///
/// The log line holds the method, the path without its query, the status, the time taken and
/// `served=router` (``FastPathHandler`` writes the same line with `served=fast_path`): never
/// a header, a cookie or a body, so no secret reaches the log (I1).
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = .error(Self.authError(for: error, context: context))
        }
        var metadata: Logger.Metadata = [
            "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
            "ms": "\((ContinuousClock.now - start).milliseconds)", "served": "router",
        ]
        if let requestId = response.headers[.xRequestId] { metadata["request_id"] = "\(requestId)" }
        context.logger.info("request", metadata: metadata)
        return response
    }

    static func authError(for error: any Error, context: Context) -> AuthError {
        switch error {
        case let error as AuthError:
            return error
        case PasswordHasherError.overloaded:
            context.logger.warning("password hashing queue full; answering 503")
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
