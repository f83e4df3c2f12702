import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTP1

/// One forward of the fast path: the decided request head on a keep-alive connection of the
/// loop's pool, its response streamed to the client as HTTP/1.
final class UpstreamExchange {
    /// Where the exchange is.
    enum State {
        /// Waiting for a pool connection (`fresh`: a new one, for the retry).
        case connecting(fresh: Bool)
        /// Sent; no response head yet. `reused`: a kept-alive connection (it may have been
        /// closed by the upstream as it was taken).
        case sent(UpstreamConnectionHandler, reused: Bool)
        /// The response head is out to the client with `status`.
        case streaming(UpstreamConnectionHandler, status: Int)
    }

    let request: HTTPRequestHead
    let requestId: String
    let method: HTTPRequest.Method
    /// The client's path without its query, for the access log.
    let path: Substring
    let upstream: UpstreamTarget
    /// The client's `Host`, for the route label of its count.
    let authority: String?
    let started: ContinuousClock.Instant
    /// When the request head went to the upstream (for its latency histogram).
    var sentAt: ContinuousClock.Instant?
    var state = State.connecting(fresh: false)
    /// Already retried once on a new connection.
    var retried = false

    init(_ head: UpstreamRequestHead, path: Substring, authority: String?, started: ContinuousClock.Instant) {
        self.authority = authority
        self.request = HTTPRequestHead(version: .http1_1, method: head.method == .head ? .HEAD : .GET, uri: head.uri, headers: head.headers)
        self.requestId = head.requestId
        self.method = head.method
        self.path = path
        self.upstream = head.upstream
        self.started = started
    }

    /// The upstream connection, once there is one.
    var connection: UpstreamConnectionHandler? {
        switch state {
        case .connecting: nil
        case .sent(let connection, _), .streaming(let connection, _): connection
        }
    }
}

extension FastPathHandler: UpstreamResponder {
    /// The exchange in progress, if any.
    private var exchange: UpstreamExchange? {
        if case .exchanging(let exchange) = responding { exchange } else { nil }
    }

    func connect(_ exchange: UpstreamExchange, context: ChannelHandlerContext) {
        guard let pool, case .connecting(let fresh) = exchange.state else { return }
        pool.withConnection(to: exchange.upstream, fresh: fresh) { result, reused in
            guard self.active, self.exchange === exchange else {
                if case .success(let connection) = result { connection.abandon() }
                return
            }
            switch result {
            case .success(let connection):
                exchange.state = .sent(connection, reused: reused)
                exchange.sentAt = .now
                connection.send(exchange.request, to: self)
            case .failure(let error):
                self.answerFailure(.closedBeforeResponse, error: error, context: context)
            }
        }
    }

    var takesResponseBytes: Bool { context?.channel.isWritable ?? false }

    func upstreamResponse(_ part: HTTPClientResponsePart) {
        guard let context, let exchange, let http1 = http1Context else { return }
        switch part {
        case .head(let head):
            guard case .sent(let connection, _) = exchange.state else { return }
            exchange.state = .streaming(connection, status: Int(head.status.code))
            if let sentAt = exchange.sentAt { settings.gateway.metrics.metrics.upstreamResponse(exchange.upstream.name, took: .now - sentAt) }
            let headers = ProxyHeaders.clientResponse(head.headers, requestId: exchange.requestId, date: currentDate())
            http1.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
        case .body(let buffer):
            http1.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            // Logged before the end leaves, so the line is there when the client has its answer.
            if case .streaming(_, let status) = exchange.state { log(exchange, status: status) }
            http1.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            responding = .idle
            finish(context: context)
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamFailed(_ failure: UpstreamFailure) {
        guard let context, let exchange else { return }
        switch exchange.state {
        case .streaming:
            // Part of the response is out: the client can only learn of the failure by the close.
            settings.logger.warning("upstream failed mid-response", metadata: ["error": "\(failure)", "request_id": "\(exchange.requestId)"])
            responding = .idle
            context.close(promise: nil)
        case .sent(_, reused: true) where failure == .closedBeforeResponse && !exchange.retried:
            // A kept-alive connection the upstream closed as it was taken: GET and HEAD are
            // idempotent, so once more, on a new connection.
            exchange.retried = true
            exchange.state = .connecting(fresh: true)
            connect(exchange, context: context)
        case .sent, .connecting:
            answerFailure(failure, error: failure, context: context)
        }
    }

    /// 504 when the upstream was too slow, else 502; JSON, never a hang.
    private func answerFailure(_ failure: UpstreamFailure, error: any Error, context: ChannelHandlerContext) {
        guard let exchange else { return }
        settings.logger.warning("upstream failed", metadata: ["error": "\(error)", "request_id": "\(exchange.requestId)"])
        let answer = settings.gateway.answer(
            GatewayAnswer(error: .upstreamFailure(timedOut: failure == .timedOut), requestId: exchange.requestId), to: exchange.method,
            accept: exchange.request.headers.first(name: "accept")
        )
        log(exchange, status: answer.status)
        write(answer, method: exchange.method)
        responding = .idle
        finish(context: context)
    }

    /// The exchange's ``AccessLog`` line.
    private func log(_ exchange: UpstreamExchange, status: Int) {
        AccessLog.request(
            settings.logger, method: exchange.method, path: exchange.path, authority: exchange.authority, status: status, started: exchange.started,
            requestId: exchange.requestId, served: .fastPath, metrics: settings.gateway.metrics
        )
    }
}
