import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite("WebSocket pass-through (SPEC §2.3)", .serialized)
struct WebSocketProxyTests {
    static let password = "websocket password"

    /// Connects through the gateway, sends `messages`, and returns everything received.
    static func exchange(
        port: Int, path: String, cookie: String?, extraHeaders: HTTPFields = [:], messages: [String], pause: Duration = .zero, after: [String] = []
    ) async throws -> [String] {
        var headers = extraHeaders
        if let cookie { headers[.cookie] = "gatehouse_session=\(cookie)" }
        let received = NIOLockedValueBox<[String]>([])
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)\(path)", configuration: .init(additionalHeaders: headers), logger: Logger(label: "ws-test")) { inbound, outbound, _ in
            var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
            if case .text(let first) = try await iterator.next() { received.withLockedValue { $0.append(first) } }
            for message in messages {
                try await outbound.write(.text(message))
                if case .text(let echoed) = try await iterator.next() { received.withLockedValue { $0.append(echoed) } }
            }
            if !after.isEmpty {
                try await Task.sleep(for: pause)
                for message in after {
                    try await outbound.write(.text(message))
                    if case .text(let echoed) = try await iterator.next() { received.withLockedValue { $0.append(echoed) } }
                }
            }
            try await outbound.write(.binary(ByteBuffer(bytes: [0, 1, 2, 255])))
            if case .binary(let echoed) = try await iterator.next() { received.withLockedValue { $0.append("binary:\(Array(echoed.readableBytesView))") } }
            try await outbound.close(.normalClosure, reason: nil)
        }
        return received.withLockedValue { $0 }
    }

    @Test("a logged-in upgrade is relayed both ways with the identity set and client copies removed")
    func relayed() async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let signup = try await api.signup("ws@example.com", Self.password)
            let token = try #require(signup.sessionToken())
            var spoof = HTTPFields()
            spoof[HTTPField.Name("X-User-Id")!] = "admin"
            spoof[HTTPField.Name("X_User_Email")!] = "root@example.com"
            let received = try await Self.exchange(port: port, path: "/app/ws?room=1", cookie: token, extraHeaders: spoof, messages: ["hello", "wörld 🔐"])
            #expect(received.count == 4)
            let first = try #require(received.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
            #expect(first["target"] as? String == "/app/ws?room=1")
            let headers = (first["headers"] as? [[String]] ?? []).map { ($0[0].lowercased(), $0[1]) }
            #expect(headers.filter { $0.0 == "x-user-id" }.map(\.1) == [signup.json["id"] as? String])
            #expect(headers.filter { $0.0 == "x-user-email" }.map(\.1) == ["ws@example.com"])
            #expect(headers.filter { $0.0 == "x_user_email" }.isEmpty)
            #expect(!headers.contains { $0.0 == "cookie" && $0.1.contains(token) })
            #expect(Array(received.dropFirst()) == ["hello", "wörld 🔐", "binary:[0, 1, 2, 255]"])
        }
    }

    @Test("an upgrade without a session, or with a dead one, is refused before any relay with 401 and the JSON error body; a public one needs none")
    func policy() async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            await #expect(throws: (any Error).self) {
                _ = try await Self.exchange(port: port, path: "/app/ws", cookie: nil, messages: ["x"])
            }
            for cookie in ["", "Cookie: gatehouse_session=\(String(repeating: "A", count: 43))\r\n"] {
                let response = try await rawHTTP(
                    port: port,
                    "GET /app/ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\(cookie)\r\n"
                )
                let end = try #require(response.range(of: "\r\n\r\n"))
                let lines = response[..<end.lowerBound].split(separator: "\r\n").map { $0.lowercased() }
                let body = String(response[end.upperBound...])
                #expect(lines.first == "http/1.1 401 unauthorized")
                #expect(lines.contains("content-type: application/json; charset=utf-8"))
                #expect(lines.contains("content-length: \(body.utf8.count)"))
                #expect(lines.contains { $0.hasPrefix("x-request-id: ") })
                #expect(!lines.contains { $0.hasPrefix("upgrade:") || $0.hasPrefix("sec-websocket-accept:") })
                // The body of any unauthenticated request (the upstream was not asked).
                #expect(body == #"{"error":"unauthenticated","message":"Not logged in."}"#)
            }
            let plain = try await api.request(.get, "/app/ws")
            #expect(plain.status == 401)
            #expect(plain.body == #"{"error":"unauthenticated","message":"Not logged in."}"#)
            let received = try await Self.exchange(port: port, path: "/public/ws", cookie: nil, messages: ["open"])
            #expect(received.dropFirst().first == "open")
        }
    }

    @Test("a relayed WebSocket is closed once its session is revoked (policy violation), on SQLite and with Redis", arguments: SessionBackend.allCases)
    func closedOnRevocation(sessions: SessionBackend) async throws {
        try await TestGatehouse.withUpstream(sessions: sessions) { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let token = try #require(try await api.signup("revoked-ws@example.com", Self.password).sessionToken())
            var headers = HTTPFields()
            headers[.cookie] = "gatehouse_session=\(token)"
            let ended = NIOLockedValueBox<String?>(nil)
            try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/app/ws", configuration: .init(additionalHeaders: headers), logger: Logger(label: "ws-test")) {
                inbound, outbound, context in
                var iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                _ = try await iterator.next()
                try await outbound.write(.text("before"))
                guard case .text("before") = try await iterator.next() else { return }
                #expect(try await api.logout(cookie: token).status == 200)
                // The relay must end by itself; the watchdog (closing from this side after 20 s)
                // only keeps a broken build from hanging, and marks the run as failed.
                let watchdogFired = NIOLockedValueBox(false)
                let watchdog = Task {
                    try await Task.sleep(for: .seconds(20))
                    watchdogFired.withLockedValue { $0 = true }
                    try await outbound.close(.normalClosure, reason: nil)
                }
                while (try? await iterator.next()) ?? nil != nil {}
                watchdog.cancel()
                ended.withLockedValue { $0 = watchdogFired.withLockedValue { $0 } ? "still open" : "closed" }
            }
            #expect(ended.withLockedValue { $0 } == "closed")
        }
    }

    @Test("a cross-site WebSocket upgrade (a foreign, null or second Origin) is refused before any relay; a same-site one passes")
    func crossSiteUpgrade() async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let token = try #require(try await api.signup("origin@example.com", Self.password).sessionToken())
            for origin in ["https://evil.example", "null", "http://127.0.0.1.evil.example"] {
                var headers = HTTPFields()
                headers[.origin] = origin
                await #expect(throws: (any Error).self, "\(origin)") {
                    _ = try await Self.exchange(port: port, path: "/app/ws", cookie: token, extraHeaders: headers, messages: ["x"])
                }
                let upgrade = try await api.request(.get, "/app/ws", cookie: token, headers: [
                    "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": origin,
                ])
                #expect(upgrade.status == 403, "\(origin)")
                #expect(upgrade.json["error"] as? String == "csrf", "\(origin)")
                #expect(EchoedRequest(upgrade) == nil, "\(origin) reached the upstream")
            }
            // The WebSocket client sends `Origin: ws://127.0.0.1` of its own: the same site.
            #expect(try await Self.exchange(port: port, path: "/app/ws", cookie: token, messages: ["same"]).dropFirst().first == "same")
        }
    }

    @Test("an upgrade to one of Gatehouse's own endpoints is refused with a JSON error body")
    func ownEndpoint() async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            let response = try await rawHTTP(
                port: port,
                "GET /auth/me HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            #expect(response.hasPrefix("HTTP/1.1 400 "))
            #expect(response.hasSuffix(#"{"error":"invalid_request","message":"WebSocket upgrades are accepted on proxied routes only."}"#))
        }
    }
}
