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

    @Test("an upgrade without a session is refused before any relay (400, no upgrade), a public one needs none")
    func policy() async throws {
        try await TestGatehouse.withUpstream { api, _, _ in
            let port = try #require((api as? SocketTarget)?.port)
            await #expect(throws: (any Error).self) {
                _ = try await Self.exchange(port: port, path: "/app/ws", cookie: nil, messages: ["x"])
            }
            let upgrade = try await api.request(.get, "/app/ws", headers: ["Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="])
            // Hummingbird answers a refused upgrade with 400 and no body; nothing reaches the upstream.
            #expect(upgrade.status == 400)
            #expect(EchoedRequest(upgrade) == nil)
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
                #expect(upgrade.status != 101 && upgrade.status != 200, "\(origin)")
                #expect(EchoedRequest(upgrade) == nil, "\(origin) reached the upstream")
            }
            // The WebSocket client sends `Origin: ws://127.0.0.1` of its own: the same site.
            #expect(try await Self.exchange(port: port, path: "/app/ws", cookie: token, messages: ["same"]).dropFirst().first == "same")
        }
    }
}
