import GatehouseCore
import GatehouseStore
import Hummingbird

/// Liveness and readiness (SPEC §2.6).
struct OperationsController: Sendable {
    let store: any AuthStore

    func addRoutes(to router: Router<GatehouseRequestContext>) {
        router.get("/healthz") { _, _ in Response.json(.ok, .status("ok")) }
        router.get("/readyz", use: ready)
    }

    /// 200 while SQLite answers; 503 when it cannot serve, so the load balancer stops sending.
    @Sendable func ready(_ request: Request, context: GatehouseRequestContext) async throws -> Response {
        do {
            try await store.ping()
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
