import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `GET /metrics` (SPEC §2.6): the gauges read at scrape time (Redis, the hashing pool, the
/// database's counts), then every series in the Prometheus text format.
struct MetricsEndpoint: Sendable {
    let metrics: GatehouseMetrics
    let sqlite: SQLiteAuthStore
    let cache: CachedAuthStore?
    let hasher: Argon2Hasher

    /// The exposition format's media type.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Reads the gauges now and renders every series.
    func scrape(logger: Logger) async -> Response {
        metrics.redisUp.set(Int64(cache?.isTrusted == true ? 1 : 0))
        metrics.redisBreakerOpen.set(Int64(cache?.redis.isCircuitOpen == true ? 1 : 0))
        let admitted = hasher.inFlight
        metrics.hashRunning.set(Int64(min(admitted, hasher.workers)))
        metrics.hashQueueDepth.set(Int64(max(0, admitted - hasher.workers)))
        do {
            let counts = try await sqlite.counts(now: Date())
            metrics.activeSessions.set(Int64(counts.activeSessions))
            metrics.mailOutboxDepth.set(Int64(counts.mailOutbox))
            metrics.auditRows.set(Int64(counts.auditRows))
        } catch {
            // The other series still say something; the database gauges keep their last values.
            logger.error("metrics: database counts failed", metadata: ["error": "\(error)"])
        }
        var headers = HTTPFields()
        headers[.contentType] = Self.contentType
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render())))
    }

    /// Adds the route: on the main router unless `metrics.listen` moves it to its own listener,
    /// where the main listener answers 404 like any unknown endpoint.
    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/metrics") { _, context in await scrape(logger: context.logger) }
    }
}
