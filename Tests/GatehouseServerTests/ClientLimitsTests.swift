import Foundation
import GatehouseCore
import GatehouseTestSupport
import Testing

/// A TCP connection for watching the server close it: `waitForClose()` tells a close
/// (`recv` returns 0) from silence (the receive timeout passes first).
final class WatchedConnection: @unchecked Sendable {
    let descriptor: Int32

    init(port: Int, receiveTimeout seconds: Int = 30) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(descriptor) }

    func send(_ text: String) {
        _ = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the server closes or resets (`true`) or the receive timeout passes (`false`);
    /// whatever arrives before is returned too.
    func waitForClose() -> (closed: Bool, received: String) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return (true, String(decoding: received, as: UTF8.self)) }
            // A reset is a close too; only the receive timeout is silence.
            if count < 0 { return (errno != EAGAIN && errno != EWOULDBLOCK, String(decoding: received, as: UTF8.self)) }
            received += buffer[0..<count]
        }
    }
}

@Suite("Client connection limits (slow clients, connection floods)", .serialized)
struct ClientLimitsTests {
    @Test("a head that does not arrive within client.header_timeout closes the connection (slowloris); a complete one is answered")
    func headerTimeout() async throws {
        try await TestGatehouse.run(.live, configure: { $0.client.headerTimeout = .seconds(1) }) { api, _ in
            let port = try #require((api as? SocketTarget)?.port)
            // At once and after a first request: both heads stall halfway.
            let first = try WatchedConnection(port: port)
            first.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            let second = try WatchedConnection(port: port)
            second.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            let (stalled, later) = try await onThread { (first.waitForClose(), second.waitForClose()) }
            #expect(stalled.closed && stalled.received.isEmpty)
            #expect(later.closed && later.received.hasPrefix("HTTP/1.1 200"))
            // The server still answers, on a new connection: the test client's own one, opened
            // as the test began and silent since, is rightly closed by the header timeout too
            // when the waits above outlast it on a loaded machine.
            let after = try await rawHTTP(port: port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            #expect(after.hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test("pipelined requests answered in full leave a kept-alive connection to client.idle_timeout, not to the header timeout")
    func pipelinedThenIdle() async throws {
        try await TestGatehouse.run(.live, configure: {
            $0.client.headerTimeout = .seconds(1)
            $0.client.idleTimeout = .seconds(60)
        }) { api, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let connection = try KeepAliveConnection(port: port)
            let statuses = try await onThread { () -> [Int] in
                try connection.write(String(repeating: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", count: 2))
                let first = try connection.readResponse().status
                let second = try connection.readResponse().status
                // Quiet for longer than the header timeout, well within the idle timeout.
                Thread.sleep(forTimeInterval: 3)
                try connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return [first, second, try connection.readResponse().status]
            }
            #expect(statuses == [200, 200, 200])
        }
    }

    @Test("a connection with no request in progress for client.idle_timeout is closed; a WebSocket is a request in progress")
    func idleTimeout() async throws {
        try await TestGatehouse.withUpstream(configure: { $0.client.idleTimeout = .seconds(1) }) { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let idle = try WatchedConnection(port: port)
            idle.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let outcome = try await onThread { idle.waitForClose() }
            #expect(outcome.closed && outcome.received.hasPrefix("HTTP/1.1 200"))
            // A relayed WebSocket quiet for longer than the idle timeout still relays.
            let received = try await WebSocketProxyTests.exchange(port: port, path: "/public/ws", cookie: nil, messages: [], pause: .seconds(3), after: ["late"])
            #expect(received.dropFirst().first == "late")
        }
    }

    @Test("connections beyond client.max_connections are closed as they are accepted; a place freed is taken again")
    func maxConnections() async throws {
        try await TestGatehouse.run(.live, configure: { $0.client.maxConnections = 2 }) { api, _ in
            let port = try #require((api as? SocketTarget)?.port)
            // Three at once, each sending a request and staying open: at most two are served
            // (the test client may hold one of the places itself), the rest closed unanswered.
            let connections = try (0..<3).map { _ in try WatchedConnection(port: port, receiveTimeout: 2) }
            for connection in connections { connection.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") }
            let outcomes = try await onThread { connections.map { $0.waitForClose() } }
            let served = outcomes.filter { $0.received.hasPrefix("HTTP/1.1 200") }
            let refused = outcomes.filter { $0.closed && $0.received.isEmpty }
            #expect(served.count <= 2 && served.count >= 1, "\(outcomes)")
            #expect(refused.count >= 1, "\(outcomes)")
            // Served ones were kept open (not closed), so the limit, not a timeout, refused the rest.
            #expect(served.allSatisfy { !$0.closed })
            // Once they close, a new connection gets a place.
            _ = consume connections
            #expect(
                try await eventually {
                    guard let next = try? KeepAliveConnection(port: port) else { return false }
                    return (try? await next.status("GET", "/healthz")) == 200
                }
            )
        }
    }

}
