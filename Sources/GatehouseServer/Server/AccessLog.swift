import HTTPTypes
import Logging

/// The one line per request (SPEC §3), written the same by the router and the fast path
/// (which also count it in ``RequestMetrics`` here):
/// method, path without its query, status, milliseconds, request id and which transport
/// answered. Never a header, a cookie or a body, so no secret reaches the log (I1).
enum AccessLog {
    /// Which transport answered.
    enum Served: String {
        case router
        case fastPath = "fast_path"
    }

    /// Counts the request in `metrics` and logs the line at `info`; `requestId` when the
    /// logger's metadata does not carry it.
    static func request(
        _ logger: Logger, method: HTTPRequest.Method, path: Substring, authority: String?, status: Int, started: ContinuousClock.Instant,
        requestId: String?, served: Served, metrics: RequestMetrics
    ) {
        metrics.count(path: path, authority: authority, status: status, served: served)
        guard logger.logLevel <= .info else { return }
        // Sized once for the six fields: no rehash while it fills.
        var metadata = Logger.Metadata(minimumCapacity: 6)
        metadata["method"] = .string(method.rawValue)
        metadata["path"] = .string(String(path))
        metadata["status"] = .stringConvertible(status)
        metadata["ms"] = .stringConvertible((ContinuousClock.now - started).milliseconds)
        metadata["served"] = .string(served.rawValue)
        if let requestId { metadata["request_id"] = .string(requestId) }
        logger.info("request", metadata: metadata)
    }
}
