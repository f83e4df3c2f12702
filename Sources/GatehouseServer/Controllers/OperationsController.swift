import GatehouseCore
import GatehouseStore
import Hummingbird

/// Liveness and readiness (SPEC §2.6).
struct OperationsController: Sendable {
    let store: any AuthStore
    let cache: CachedAuthStore?

    func addRoutes(to router: Router<GatehouseRequestContext>) {
        router.get("/healthz") { _, _ in Response.json(.ok, .status("ok")) }
        router.get("/readyz", use: ready)
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
