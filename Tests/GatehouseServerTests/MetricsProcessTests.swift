import Foundation
import GatehouseTestSupport
import Testing

/// `GET /metrics` of a real `gatehouse serve` (Redis, an upstream, lockout and a login rate
/// limit on), read with the Prometheus project's own text parser (prometheus-client).
@Suite("Metrics scraped over HTTP and parsed by prometheus-client")
struct MetricsProcessTests {
    /// Every sample of a scrape, keyed `name{label=value,...}` (labels sorted).
    static func scrape(_ address: String) async throws -> [String: Double] {
        let output = try await runPython(
            """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            with urllib.request.urlopen(sys.argv[1]) as response:
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers["Content-Type"]
                text = response.read().decode("utf-8")
            samples = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    key = f"{sample.name}{{{labels}}}"
                    assert key not in samples, f"duplicate sample {key}"
                    samples[key] = sample.value
            print(json.dumps(samples))
            """, arguments: ["http://\(address)/metrics"])
        return try JSONDecoder().decode([String: Double].self, from: Data(output.utf8))
    }

    @Test("a scripted sequence of requests moves exactly the series it should")
    func scriptedSequence() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        try await EchoUpstream.with { appPort in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let config = try writeTestConfiguration(in: directory, extra: singleRouteYAML(appPort: appPort, prefix: "/app/", auth: "required"))
            let gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"), environment: [
                "GATEHOUSE_LOG_LEVEL": "info", "GATEHOUSE_REDIS_URL": redis.url(),
                "GATEHOUSE_ABUSE_LOCKOUT_MAX_FAILURES": "2", "GATEHOUSE_ABUSE_LOGIN_PER_IP": "12/1m",
            ])
            defer { gatehouse.terminate() }
            let api = SocketTarget(address: gatehouse.address)
            #expect(try await api.signup("a@example.com", "a fine password 1").status == 201)
            #expect(try await api.signup("b@example.com", "a fine password 2").status == 201)
            let before = try await Self.scrape(gatehouse.address)
            #expect(before["gatehouse_redis_up{}"] == 1)
            #expect(before["gatehouse_redis_breaker_open{}"] == 0)
            #expect(before["gatehouse_sessions_active{}"] == 2)
            #expect(before.contains { $0.key.hasPrefix("gatehouse_build_info{version=") && $0.value == 1 })

            let login = try await api.login("a@example.com", "a fine password 1")
            let token = try #require(login.sessionToken())
            #expect(try await api.login("a@example.com", "not the password").status == 401)
            #expect(try await api.login("nobody@example.com", "a fine password 1").status == 401)
            for _ in 0..<2 { #expect(try await api.login("b@example.com", "not the password").status == 401) }
            // Locked now; then the per-IP limit (12 a minute, 6 spent) refuses with 429.
            var statuses: [Int] = []
            for _ in 0..<8 { statuses.append(try await api.login("b@example.com", "a fine password 2").status) }
            #expect(statuses.contains(429))
            let locked = statuses.filter { $0 != 429 }.count
            #expect(locked >= 1)

            for _ in 0..<3 { #expect(try await api.get("/app/hello", cookie: token).status == 200) }
            #expect(try await api.get("/app/hello").status == 401)
            #expect(try await api.get("/auth/verify", cookie: token).status == 200)
            #expect(try await api.get("/auth/verify").status == 401)
            #expect(try await api.get("/auth/me", cookie: token).status == 200)

            let after = try await Self.scrape(gatehouse.address)
            func delta(_ key: String) -> Double { (after[key] ?? 0) - (before[key] ?? 0) }
            #expect(delta("gatehouse_logins_total{outcome=success}") == 1)
            #expect(delta("gatehouse_logins_total{outcome=wrong_password}") == 3)
            #expect(delta("gatehouse_logins_total{outcome=unknown}") == 1)
            #expect(delta("gatehouse_logins_total{outcome=locked}") == Double(locked))
            #expect(delta("gatehouse_logins_total{outcome=rate_limited}") == Double(8 - locked))
            #expect(delta("gatehouse_http_requests_total{route=/auth/login,served=router,status=200}") == 1)
            #expect(delta("gatehouse_http_requests_total{route=/auth/login,served=router,status=401}") == Double(4 + locked))
            #expect(delta("gatehouse_http_requests_total{route=/auth/login,served=router,status=429}") == Double(8 - locked))
            #expect(delta("gatehouse_http_requests_total{route=/auth/me,served=router,status=200}") == 1)
            // Proxied and verify requests on a kept-alive connection take the event-loop fast path.
            #expect(delta("gatehouse_http_requests_total{route=/app/,served=fast_path,status=200}") == 3)
            #expect(delta("gatehouse_http_requests_total{route=/app/,served=fast_path,status=401}") == 1)
            #expect(delta("gatehouse_verify_total{outcome=allowed}") == 1)
            #expect(delta("gatehouse_verify_total{outcome=unauthenticated}") == 1)
            #expect(delta("gatehouse_upstream_response_seconds_count{upstream=app}") == 3)
            #expect(delta("gatehouse_upstream_response_seconds_sum{upstream=app}") > 0)
            // Five authenticated requests, each looked up once: in the instance, or in Redis.
            let lookups = ["local", "hit", "miss", "sqlite_fallback"].map { delta("gatehouse_session_lookups_total{result=\($0)}") }
            #expect(lookups.reduce(0, +) == 5)
            #expect(delta("gatehouse_session_lookups_total{result=sqlite_fallback}") == 0)
            // Argon2id: the signups were before the first scrape; the five logins that reached a
            // password check each ran one (the unknown address too: no timing oracle), the
            // locked and rate-limited ones none.
            #expect(delta("gatehouse_password_hash_seconds_count{}") == 5)
            #expect(delta("gatehouse_password_hash_seconds_bucket{le=+Inf}") == 5)
            #expect(after["gatehouse_password_hash_queue_depth{}"] == 0)
            #expect(after["gatehouse_sessions_active{}"] == 3)
            #expect(after["gatehouse_mail_outbox_depth{}"] == 0)
            #expect(delta("gatehouse_audit_rows{}") >= 6)
            #expect(!after.keys.contains { $0.contains("hello") })
        }
    }
}
