import GatehouseCore
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import Logging
import NIOCore

/// WebSocket pass-through (SPEC §2.3): an upgrade request on a proxied route is accepted
/// only when the route's policy allows it (a session for `auth: required`), then its
/// messages are relayed to and from a WebSocket opened to the upstream with the same
/// header rewriting as any proxied request (identity set, client copies removed).
/// An upgrade refused gets the decision's answer, as any request would (``RefusedUpgradeHandler``):
/// `401` with the JSON error body without a session. A relay behind a session lasts only
/// while the decision still admits that session.
struct WebSocketProxy: Sendable {
    let gateway: Gateway
    /// Largest message relayed either way.
    static let maximumMessageSize = 16 * 1024 * 1024
    /// How often a relayed WebSocket's session is checked again.
    static let sessionRecheckInterval = Duration.seconds(1)
    /// Handshake headers the upstream connection makes for itself.
    static let handshakeHeaders: Set<String> = [
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept", "content-length",
    ]

    func shouldUpgrade(_ head: HTTPRequest, channel: any Channel, logger: Logger) async throws
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>
    {
        let client = ForwardingContext(
            connection: ConnectionFacts(peer: channel.remoteAddress?.ipAddress ?? "unknown", trustedProxies: gateway.configuration.trustedProxies),
            headers: head.headerFields, authority: head.authority
        )
        // The gateway's decision, as for any request; only a forward is upgraded. Anything else
        // gets the decision's answer (written by `RefusedUpgradeHandler` in place of
        // Hummingbird's empty 400); Gatehouse's own endpoints, none a WebSocket, a 400.
        let pending: PendingDecision?
        let decision: GatewayDecision
        switch gateway.policy.examine(head, client: client) {
        case .decided(let decided):
            (pending, decision) = (nil, decided)
        case .needsSession(let needed):
            (pending, decision) = (needed, needed.decide(await gateway.authenticator.answer(cookies: needed.cookies, logger: logger)))
        }
        guard case .forward(let upstream) = decision else {
            let answer = GatewayAnswer(decision, requestId: client.requestId, identity: gateway.identityFields) ?? GatewayAnswer(error: Self.notProxied, requestId: client.requestId)
            let method = head.method
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(RefusedUpgradeHandler(answer: answer, method: method))
            }.get()
            return .dontUpgrade
        }
        // The WebSocket client writes the handshake's own headers, and `Host` from the URL.
        let upstreamHeaders = HTTPFields(
            upstream.headers.compactMap { name, value in HTTPField.Name(name).map { HTTPField(name: $0, value: value) } }
                .filter { !Self.handshakeHeaders.contains($0.name.canonicalName) && $0.name != .host }
        )
        let scheme = upstream.upstream.scheme == "https" ? "wss" : "ws"
        let url = "\(scheme)://\(upstream.upstream.host):\(upstream.upstream.port)\(upstream.uri)"
        let requestId = upstream.requestId
        var responseHeaders = HTTPFields()
        responseHeaders[.xRequestId] = requestId
        return .upgrade(responseHeaders) { inbound, outbound, context in
            do {
                try await WebSocketClient.connect(
                    url: url, configuration: .init(maxFrameSize: 1 << 16, additionalHeaders: upstreamHeaders), logger: context.logger
                ) { upstreamInbound, upstreamOutbound, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for try await message in inbound.messages(maxSize: Self.maximumMessageSize) {
                                try await upstreamOutbound.write(Self.frame(message))
                            }
                            try await upstreamOutbound.close(.normalClosure, reason: nil)
                        }
                        group.addTask {
                            for try await message in upstreamInbound.messages(maxSize: Self.maximumMessageSize) {
                                try await outbound.write(Self.frame(message))
                            }
                        }
                        if let pending {
                            // The same decision, made again every second with the session as it
                            // is now: a revoked or expired session (or one a route policy no
                            // longer admits) ends the relay within a second (SPEC I3).
                            group.addTask {
                                while true {
                                    try await Task.sleep(for: Self.sessionRecheckInterval)
                                    let answer = await gateway.authenticator.answer(cookies: pending.cookies, logger: context.logger)
                                    guard case .forward = pending.decide(answer) else {
                                        context.logger.info("websocket closed: session no longer admitted", metadata: ["request_id": "\(requestId)"])
                                        try? await upstreamOutbound.close(.policyViolation, reason: nil)
                                        try? await outbound.close(.policyViolation, reason: "session ended")
                                        return
                                    }
                                }
                            }
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
                try? await outbound.close(.normalClosure, reason: nil)
            } catch {
                context.logger.warning("websocket upstream failed", metadata: ["error": "\(error)", "request_id": "\(requestId)"])
                try? await outbound.close(.unexpectedServerError, reason: "upstream unavailable")
            }
        }
    }

    /// An upgrade to one of Gatehouse's own endpoints, none of which is a WebSocket.
    static let notProxied = AuthError(status: 400, code: "invalid_request", message: "WebSocket upgrades are accepted on proxied routes only.")

    static func frame(_ message: WebSocketMessage) -> WebSocketOutboundWriter.OutboundFrame {
        switch message {
        case .text(let text): .text(text)
        case .binary(let buffer): .binary(buffer)
        }
    }
}
