
import NIOConcurrencyHelpers
import Prometheus

/// Every metric an instance exposes at `GET /metrics` (SPEC §2.6), in one Prometheus
/// registry of its own: an instance (or a test's in-process server) never shares counts with
/// another. Each series is made once, when the instance starts or when its label set is
/// first seen, so that counting is an atomic add: the fast path pays for no lookup by name.
///
/// Label sets are bounded: routes are the configured prefixes and Gatehouse's own endpoint
/// paths, upstreams the configured names, outcomes the cases below. Nothing from a request
/// (a path, an email, a header) becomes a label.
public final class GatehouseMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry

    /// What a login ended with (`POST /auth/login`).
    public enum LoginOutcome: String, CaseIterable, Sendable {
        case success
        /// Right password; the second factor is asked for.
        case mfaRequired = "mfa_required"
        case wrongPassword = "wrong_password"
        /// No account for the email (or no email at all).
        case unknown
        case locked
        case disabled
        case rateLimited = "rate_limited"
        /// The hashing pool was saturated (503).
        case overloaded
    }

    /// What a verify request (`/auth/verify`, `/auth/forward`) was answered.
    public enum VerifyOutcome: String, CaseIterable, Sendable {
        /// 2xx with the identity.
        case allowed
        /// 401.
        case unauthenticated
        /// A redirect to the login page.
        case redirected
        /// 403: a live session the rules refuse (an unverified email, say).
        case forbidden
        /// Anything else: a refusal of the request itself, or a 5xx.
        case error
    }

    /// Where a session lookup was answered.
    public enum CacheResult: String, CaseIterable, Sendable {
        /// The event loop's in-process cache.
        case local
        /// A Redis entry (or tombstone).
        case hit
        /// Redis had nothing: read from SQLite.
        case miss
        /// Redis could not be asked: read from SQLite.
        case sqliteFallback = "sqlite_fallback"
    }

    private struct RequestKey: Hashable {
        let route: String
        let served: String
        let status: Int
    }

    private let requests = NIOLockedValueBox([RequestKey: Counter]())
    private let logins: [LoginOutcome: Counter]
    private let verifies: [VerifyOutcome: Counter]
    private let lookups: [CacheResult: Counter]
    private let upstreams: [String: DurationHistogram]
    /// How long one Argon2id operation took on its worker (not its wait).
    public let hashDuration: DurationHistogram
    /// `1` while this instance reads Redis, else `0`.
    public let redisUp: Gauge
    /// `1` while the Redis circuit breaker skips Redis, else `0`.
    public let redisBreakerOpen: Gauge
    /// Hashes admitted and waiting for a worker.
    public let hashQueueDepth: Gauge
    /// Hashes running on a worker.
    public let hashRunning: Gauge
    /// Sessions in SQLite that have not expired.
    public let activeSessions: Gauge
    /// Mail messages waiting to be sent.
    public let mailOutboxDepth: Gauge
    /// Audit rows held.
    public let auditRows: Gauge

    /// Upper bounds of the latency histograms: 1 ms to 30 s.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]
    /// Upper bounds of the hash-time histogram: Argon2id takes tens of milliseconds by design.
    static let hashBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5),
    ]

    /// Makes every series known up front: one per outcome and per configured upstream.
    public init(upstreams: some Sequence<String> = [String](), version: String = GatehouseVersion.current) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        logins = Dictionary(
            uniqueKeysWithValues: LoginOutcome.allCases.map {
                ($0, registry.makeCounter(name: "gatehouse_logins_total", labels: [("outcome", $0.rawValue)], help: "Logins by outcome (POST /auth/login)."))
            }
        )
        verifies = Dictionary(
            uniqueKeysWithValues: VerifyOutcome.allCases.map {
                ($0, registry.makeCounter(name: "gatehouse_verify_total", labels: [("outcome", $0.rawValue)], help: "Verify answers (/auth/verify, /auth/forward) by outcome."))
            }
        )
        lookups = Dictionary(
            uniqueKeysWithValues: CacheResult.allCases.map {
                ($0, registry.makeCounter(name: "gatehouse_session_lookups_total", labels: [("result", $0.rawValue)], help: "Session lookups by where they were answered."))
            }
        )
        self.upstreams = Dictionary(
            uniqueKeysWithValues: upstreams.map {
                (
                    $0,
                    registry.makeDurationHistogram(
                        name: "gatehouse_upstream_response_seconds", labels: [("upstream", $0)], buckets: Self.latencyBuckets,
                        help: "Time from sending a request to an upstream to its response head."
                    )
                )
            }
        )
        hashDuration = registry.makeDurationHistogram(
            name: "gatehouse_password_hash_seconds", buckets: Self.hashBuckets, help: "Time of one Argon2id hash or check on a worker thread."
        )
        redisUp = registry.makeGauge(name: "gatehouse_redis_up", help: "1 while this instance reads the Redis cache, else 0.")
        redisBreakerOpen = registry.makeGauge(name: "gatehouse_redis_breaker_open", help: "1 while the Redis circuit breaker skips Redis, else 0.")
        hashQueueDepth = registry.makeGauge(name: "gatehouse_password_hash_queue_depth", help: "Argon2id operations waiting for a worker thread.")
        hashRunning = registry.makeGauge(name: "gatehouse_password_hash_running", help: "Argon2id operations running on a worker thread.")
        activeSessions = registry.makeGauge(name: "gatehouse_sessions_active", help: "Sessions in the database that have not expired.")
        mailOutboxDepth = registry.makeGauge(name: "gatehouse_mail_outbox_depth", help: "Mail messages waiting to be sent.")
        auditRows = registry.makeGauge(name: "gatehouse_audit_rows", help: "Rows in the audit log.")
        registry.makeGauge(name: "gatehouse_build_info", labels: [("version", version)], help: "1, labelled with the running version.").set(Int64(1))
    }

    /// Counts one answered request.
    public func request(route: String, served: String, status: Int) {
        let key = RequestKey(route: route, served: served, status: status)
        let counter = requests.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = registry.makeCounter(
                name: "gatehouse_http_requests_total", labels: [("route", route), ("served", served), ("status", String(status))],
                help: "Requests answered, by route, by the transport that answered (fast_path or router), and by status."
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// Counts a login's outcome.
    public func login(_ outcome: LoginOutcome) {
        logins[outcome]?.increment()
    }

    /// Counts a verify answer.
    public func verify(_ outcome: VerifyOutcome) {
        verifies[outcome]?.increment()
    }

    /// Counts a session lookup.
    public func lookup(_ result: CacheResult) {
        lookups[result]?.increment()
    }

    /// Records an upstream's time to its response head (`upstream` is a configured name).
    public func upstreamResponse(_ upstream: String, took: Duration) {
        upstreams[upstream]?.record(took)
    }

    /// The Prometheus text exposition of every series.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// The version `gatehouse --version` and `gatehouse_build_info` report.
public enum GatehouseVersion {
    public static let current = "0.1.0"
}
