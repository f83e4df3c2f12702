import GatehouseCore
import NIOCore
import NIOHTTP1

/// The client side of an event-loop proxy exchange: told, on the shared event loop, what the
/// upstream answers.
protocol UpstreamResponder: AnyObject {
    /// A part of the upstream's final response (the decoder drops interim 1xx responses).
    func upstreamResponse(_ part: HTTPClientResponsePart)
    /// The end of a batch of reads from the upstream: time to flush.
    func upstreamReadComplete()
    /// The exchange failed; nothing more will be reported.
    func upstreamFailed(_ failure: UpstreamFailure)
    /// Whether the client takes more bytes now; while it does not, the upstream is not read.
    var takesResponseBytes: Bool { get }
}

/// How an upstream exchange failed.
enum UpstreamFailure: Error, Equatable {
    /// No response head within `proxy.response_timeout`, or no body bytes within `proxy.idle_timeout`.
    case timedOut
    /// The connection closed or failed before a response head arrived.
    case closedBeforeResponse
    /// The connection closed or failed in the middle of the response.
    case closedInResponse
    /// The upstream answered something a proxy cannot relay (a `101` to a plain request).
    case invalidResponse
}

/// One keep-alive HTTP/1 connection to an upstream, owned by a ``LoopUpstreamPool``: it
/// carries one exchange at a time for an ``UpstreamResponder`` and goes back to the pool when
/// the response ended and both sides keep the connection alive.
///
/// Bounded memory: while the responder's client does not take bytes, the upstream is not read.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private enum State {
        /// In the pool, or between exchanges.
        case idle
        /// The request is sent; no response head yet.
        case awaitingHead
        /// The response head was relayed; body parts follow.
        case streaming
        /// Closed: never used again.
        case closed
    }

    let address: String
    private let pool: LoopUpstreamPool
    private var context: ChannelHandlerContext?
    private var state = State.idle
    private var responder: (any UpstreamResponder)?
    private var keepAlive = true
    /// The method of the request in flight (a response to HEAD has no body).
    private var requestMethod = HTTPMethod.GET
    private var inPool = false
    /// The current exchange's response head was relayed (kept through a close, so that a
    /// failure is reported for the phase it happened in).
    private var responseStarted = false
    /// When the current state times out: the response head's deadline, the end of the body's
    /// idle time, or (in the pool) the idle connection's closing time.
    private var deadline = NIODeadline.distantFuture
    /// The one scheduled check, and when it runs. Deadlines mostly move later, so the timer is
    /// not rescheduled per exchange: when it runs early it looks again at `deadline`.
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?
    private var readHeld = false

    init(address: String, pool: LoopUpstreamPool) {
        self.address = address
        self.pool = pool
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Sends a bodiless request; the response goes to `responder`. A connection that closed
    /// meanwhile reports ``UpstreamFailure/closedBeforeResponse`` at once.
    func send(_ head: HTTPRequestHead, to responder: any UpstreamResponder) {
        guard let context, state == .idle, context.channel.isActive else {
            responder.upstreamFailed(.closedBeforeResponse)
            return
        }
        self.responder = responder
        state = .awaitingHead
        responseStarted = false
        keepAlive = head.isKeepAlive
        requestMethod = head.method
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        arm(after: pool.configuration.responseTimeout)
    }

    /// Whether a response that has no body by definition (to a HEAD, a 204, a 304) declares
    /// one anyway (`Content-Length` above 0, or `Transfer-Encoding`). The decoder reads no
    /// body, so bytes the upstream sends later would be read as the response to the next
    /// request on this connection, possibly another client's: such a connection is not reused.
    static func declaresImpossibleBody(_ head: HTTPResponseHead, to method: HTTPMethod) -> Bool {
        guard method == .HEAD || head.status == .noContent || head.status == .notModified else { return false }
        if head.headers.contains(name: "transfer-encoding") { return true }
        return head.headers["content-length"].contains { $0.trimmingCharacters(in: .whitespaces) != "0" }
    }

    /// The client went away: the response is not wanted, and the connection cannot be reused.
    func abandon() {
        responder = nil
        close()
    }

    /// The client takes bytes again.
    func resumeReading() {
        guard readHeld, let context else { return }
        readHeld = false
        context.read()
    }

    func close() {
        guard state != .closed else { return }
        state = .closed
        timer?.task.cancel()
        timer = nil
        context?.close(promise: nil)
    }

    // MARK: Pool

    /// Idle in the pool, closing after `idleFor` unless taken.
    func enterPool(closingAfter idleFor: Duration) {
        inPool = true
        arm(after: idleFor)
    }

    func leavePool() {
        inPool = false
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            guard state == .awaitingHead, let responder else { return close() }
            guard head.status != .switchingProtocols else { return fail(.invalidResponse) }
            keepAlive = keepAlive && head.isKeepAlive && !Self.declaresImpossibleBody(head, to: requestMethod)
            state = .streaming
            responseStarted = true
            arm(after: pool.configuration.idleTimeout)
            responder.upstreamResponse(part)
        case .body:
            guard state == .streaming, let responder else { return close() }
            arm(after: pool.configuration.idleTimeout)
            responder.upstreamResponse(part)
        case .end:
            guard state == .streaming, let responder else { return close() }
            self.responder = nil
            state = .idle
            deadline = .distantFuture
            // Back to the pool before the responder goes on, so its next request can reuse it.
            if keepAlive, context.channel.isActive {
                pool.release(self)
            } else {
                close()
            }
            responder.upstreamResponse(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        responder?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        timer?.task.cancel()
        timer = nil
        pool.remove(self)
        if let responder {
            self.responder = nil
            responder.upstreamFailed(responseStarted ? .closedInResponse : .closedBeforeResponse)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or a response that cannot be parsed: channelInactive reports it.
        close()
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if let responder, !responder.takesResponseBytes {
            readHeld = true
        } else {
            context.read()
        }
    }

    // MARK: Timers

    private func fail(_ failure: UpstreamFailure) {
        let responder = self.responder
        self.responder = nil
        close()
        responder?.upstreamFailed(failure)
    }

    /// Sets the current state's deadline to `amount` from now; schedules the check only when
    /// none is due before it.
    private func arm(after amount: Duration) {
        deadline = .now() + .nanoseconds(amount.milliseconds * 1_000_000)
        if let timer, timer.at <= deadline { return }
        schedule(at: deadline)
    }

    private func schedule(at when: NIODeadline) {
        guard let context else { return }
        timer?.task.cancel()
        timer = (context.eventLoop.assumeIsolated().scheduleTask(deadline: when) { self.timerFired() }, when)
    }

    /// Times out the current state if its deadline has passed (502/504 or a close for an
    /// exchange, a close in the pool), else looks again at the deadline.
    private func timerFired() {
        timer = nil
        guard state != .closed, deadline != .distantFuture else { return }
        guard deadline <= .now() else { return schedule(at: deadline) }
        switch state {
        case .awaitingHead where readHeld:
            // The client is not taking bytes, so the head may be waiting unread: not the
            // upstream's delay.
            arm(after: pool.configuration.responseTimeout)
        case .awaitingHead, .streaming: fail(.timedOut)
        case .idle: if inPool { close() }
        case .closed: break
        }
    }

}
