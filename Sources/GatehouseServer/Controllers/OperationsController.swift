import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import NIOCore

/// Liveness, readiness and the API's description (SPEC §2.6).
struct OperationsController: Sendable {
    let store: any AuthStore
    let cache: CachedAuthStore?

    func addRoutes(to router: Router<GatehouseRequestContext>) {
        router.get("/healthz") { _, _ in Response.json(.ok, .status("ok")) }
        router.get("/readyz", use: ready)
        router.get("/openapi.yaml") { _, _ in Self.openAPIResponse }
    }

    /// The OpenAPI 3.1 description of this API, built in (`Resources/openapi.yaml`); a test
    /// runs schemathesis against a live server to keep it true.
    static let openAPIDocument: ByteBuffer = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"), let data = try? Data(contentsOf: url) else {
            preconditionFailure("Resources/openapi.yaml is missing from the bundle")
        }
        return ByteBuffer(bytes: data)
    }()

    static var openAPIResponse: Response {
        var headers = HTTPFields()
        // application/yaml: RFC 9512.
        headers[.contentType] = "application/yaml; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: openAPIDocument))
    }

    /// 200 while SQLite answers (`degraded` when Redis is configured but not in use: the
    /// instance still serves, so it stays in the load balancer); 503 when SQLite cannot serve.
    @Sendable func ready(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        do {
            try await store.ping()
            if let cache, !cache.isTrusted {
                var body = JSONText()
                body.add("status", "degraded")
                body.add("redis", cache.redis.isCircuitOpen ? "circuit_open" : "unavailable")
                return .json(.ok, body)
            }
            return .json(.ok, .status("ready"))
        } catch {
            context.logger.error("readiness check failed", metadata: ["error": "\(error)"])
            var body = JSONText()
            body.add("status", "unavailable")
            body.add("database", "error")
            return .json(.serviceUnavailable, body)
        }
    }
}
