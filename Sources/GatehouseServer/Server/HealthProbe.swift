import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOPosix

/// `gatehouse health`: the container's `HEALTHCHECK` and any supervisor's probe, without curl.
public enum HealthProbe {
    /// The URL probed for `configuration`: its `listen` address (a wildcard address is probed
    /// on loopback) and `/healthz`, or `/readyz` when `ready`.
    public static func url(for configuration: GatehouseConfiguration, ready: Bool) -> String {
        var host = configuration.listen.host
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        if host.contains(":") { host = "[\(host)]" }
        return "http://\(host):\(configuration.listen.port)\(ready ? "/readyz" : "/healthz")"
    }

    /// Sends one GET; the response status and the start of its body, or the transport error.
    public static func probe(url: String, timeout: Duration) async throws -> (status: Int, body: String) {
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: .init(redirectConfiguration: .disallow))
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "User-Agent", value: "gatehouse-health")
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.seconds * 1e9)))
            let body = try await response.body.collect(upTo: 4096)
            try await client.shutdown()
            return (Int(response.status.code), String(buffer: body))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}
