import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The gateway decision on the event loop (SPEC §3): an adapter of ``GatewayPolicy`` like the
/// router's, for the requests it can carry to the end itself. It sits after HTTP decoding and
/// before Hummingbird in every HTTP/1 connection and takes every bodiless `GET|HEAD` (no
/// `Upgrade`, no `Connection` option but `keep-alive`) that is not one of Gatehouse's own
/// endpoints other than verify:
/// - it asks the policy, looks the session up when the decision needs one (the loop's
///   ``LoopSessionCache``, else one Redis GET on the loop's own connection, else the stores:
///   one SQLite read when Redis cannot be asked), and
/// - renders the decision: the verify answers, the refusals, the login redirect, and a
///   forward on a keep-alive connection of this loop's ``LoopUpstreamPool``.
///
/// What it passes to Hummingbird is what only the router can answer: Gatehouse's own API, a
/// request with a body or an upgrade, and a forward to an `https` upstream. Fail closed (I5):
/// the decision is the policy's, so the only 2xx of a verify carries the identity, and a
/// request to an `auth: required` route is forwarded only with the identity of a live session.
///
/// HTTP/1 order: a request is taken here only when Hummingbird has finished every response on
/// the connection, and while its answer is pending (a session lookup, an upstream exchange)
/// later requests are held (and reading paused once anything is held), so responses leave in
/// the order requests came.
final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What every connection's handler needs; built once per server.
    struct Settings: Sendable {
        /// The in-process session cache; without it every session check goes to Hummingbird.
        let cache: LocalSessionCache?
        let gateway: Gateway
        let upstreams: UpstreamConnectionPool
        let logger: Logger
    }

    /// Where the parts of the request being read go.
    private enum Disposition {
        /// To Hummingbird.
        case hummingbird
        /// Nowhere: answered here.
        case answered
        /// Taken here, answer not complete: later input is held.
        case pending
    }

    /// A request taken here, waiting for its session lookup.
    private struct Taken {
        let head: HTTPRequest
        let client: ForwardingContext
        let pending: PendingDecision
        let started: ContinuousClock.Instant
    }

    /// An upstream exchange in progress.
    private final class Exchange {
        let request: HTTPRequestHead
        let requestId: String
        let method: HTTPRequest.Method
        let path: Substring
        let upstream: UpstreamTarget
        let started: ContinuousClock.Instant
        var connection: UpstreamConnectionHandler?
        var reused = false
        /// Already retried once on a new connection.
        var retried = false
        /// The response's status, once its head was written to the client.
        var status: Int?

        init(_ head: UpstreamRequestHead, path: Substring, started: ContinuousClock.Instant) {
            self.request = HTTPRequestHead(version: .http1_1, method: head.method == .head ? .HEAD : .GET, uri: head.uri, headers: head.headers)
            self.requestId = head.requestId
            self.method = head.method
            self.path = path
            self.upstream = head.upstream
            self.started = started
        }
    }

    private let settings: Settings
    private var context: ChannelHandlerContext?
    private var cache: LoopSessionCache?
    private var pool: LoopUpstreamPool?
    private var disposition = Disposition.hummingbird
    /// Requests given to Hummingbird whose response has not ended yet.
    private var inHummingbird = 0
    /// What arrived while a request was pending, in order: parts, and the events and errors
    /// that must not overtake its answer (a half-close, a quiesce, a parse error).
    private enum Held {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }

    private var held = CircularBuffer<Held>()
    /// The pending request's `.end` has arrived (and is not in `held`).
    private var pendingEnded = false
    /// The request waiting for its session lookup.
    private var taken: Taken?
    private var exchange: Exchange?
    /// The context of Hummingbird's HTTP/1 ⇄ HTTP types codec, below which answers are written;
    /// without it nothing is answered here.
    private var http1Context: ChannelHandlerContext?
    private var requestIds = RequestIdSequence()
    private var readWanted = false
    /// Parts given to Hummingbird since the last read-complete it saw.
    private var readsSinceComplete = false
    private var active = true
    private var date: (second: Int64, text: String) = (0, "")
    /// The TCP peer, and whether it is one of `trusted_proxies`: decided once per connection.
    private lazy var connection = ConnectionFacts(
        peer: context?.channel.remoteAddress?.ipAddress ?? "unknown", trustedProxies: settings.gateway.configuration.trustedProxies
    )

    init(settings: Settings) {
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        cache = settings.cache?.cache(for: context.eventLoop)
        pool = settings.upstreams.pool(for: context.eventLoop)
        // Answers are written as HTTP/1 below the HTTP types codec (whose outbound side is a
        // stateless conversion): upstream responses are HTTP/1 already, and a verify answer
        // has no use for HTTP types fields built only to be converted back.
        http1Context = try? context.pipeline.syncOperations.context(handlerType: HTTP1ToHTTPServerCodec.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        if let connection = exchange?.connection {
            exchange = nil
            connection.abandon()
        }
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if disposition == .pending {
            // The pending request's own end is not "later input": keep it aside, so that
            // reading goes on (a bodiless request taken here has no other parts).
            if case .end = part, !pendingEnded {
                pendingEnded = true
            } else {
                held.append(.part(part))
            }
        } else {
            route(part, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if disposition == .pending {
            held.append(.event(event))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if disposition == .pending {
            held.append(.error(error))
        } else {
            context.fireErrorCaught(error)
        }
    }

    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            take(head, context: context)
        case .body, .end:
            if disposition == .hummingbird {
                readsSinceComplete = true
                context.fireChannelRead(wrapInboundOut(part))
            }
        }
    }

    /// Decides a request here, or passes it to Hummingbird when only the router can answer it.
    private func take(_ head: HTTPRequest, context: ChannelHandlerContext) {
        guard inHummingbird == 0, http1Context != nil, head.method == .get || head.method == .head, Self.isPlainBodiless(head.headerFields)
        else { return pass(head, context: context) }
        let started = ContinuousClock.now
        let client = ForwardingContext(connection: connection, headers: head.headerFields, authority: head.authority) { requestIds.next() }
        switch settings.gateway.policy.examine(head, client: client) {
        case .decided(.reserved):
            pass(head, context: context)
        case .decided(let decision):
            if case .forward(let upstream) = decision, !canExchange(with: upstream.upstream) { return pass(head, context: context) }
            disposition = .pending
            pendingEnded = false
            render(decision, head: head, client: client, started: started, context: context)
        case .needsSession(let pending):
            if let upstream = pending.upstream, !canExchange(with: upstream) { return pass(head, context: context) }
            disposition = .pending
            pendingEnded = false
            taken = Taken(head: head, client: client, pending: pending, started: started)
            lookUp(pending.cookies, context: context)
        }
    }

    /// Whether this loop can forward to `upstream` itself (plain HTTP, a pool).
    private func canExchange(with upstream: UpstreamTarget) -> Bool {
        pool != nil && upstream.scheme == "http"
    }

    private func pass(_ head: HTTPRequest, context: ChannelHandlerContext) {
        disposition = .hummingbird
        inHummingbird += 1
        readsSinceComplete = true
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readsSinceComplete = false
        context.fireChannelReadComplete()
    }

    /// Whether a request's fields announce no body, no upgrade and no `Connection` option but
    /// `keep-alive`: one pass over the fields. (A second `Host` is the decision's to refuse.)
    static func isPlainBodiless(_ fields: HTTPFields) -> Bool {
        for field in fields {
            switch field.name {
            case .transferEncoding, .upgrade: return false
            case .contentLength where field.value != "0": return false
            case .connection where field.value.lowercased() != "keep-alive": return false
            default: continue
            }
        }
        return true
    }

    /// Looks the session up and decides: a hit in memory after the current batch of reads (so
    /// that an invalidation already received by this loop is applied first); else one Redis
    /// GET on this loop's connection, whose reply the stores finish with when it is not a
    /// live session; else the stores (SQLite when Redis cannot be asked). Never twice.
    private func lookUp(_ cookies: [Substring], context: ChannelHandlerContext) {
        guard !cookies.isEmpty else { return decide(.anonymous, context: context) }
        let authenticator = settings.gateway.authenticator
        let logger = settings.logger
        guard cookies.count == 1, let cache else {
            // Several session cookies (each tried in order) or no in-process cache.
            return answer(context: context) { await authenticator.answer(cookies: cookies, logger: logger) }
        }
        guard let tokenHash = SessionToken.hash(ofCookieValue: cookies[0]) else { return decide(.rejected, context: context) }
        context.eventLoop.assumeIsolated().execute {
            let now = Date()
            if let hit = cache.lookup(tokenHash, nowMilliseconds: Timestamp.milliseconds(now)) {
                return self.decide(.live(hit.identity), context: context)
            }
            guard cache.canLoad else {
                return self.answer(context: context) { await authenticator.answer(cookies: cookies, logger: logger) }
            }
            cache.load(tokenHash, nowMilliseconds: Timestamp.milliseconds(now)).assumeIsolated().whenComplete { result in
                switch result {
                case .success(.identity(let identity)):
                    self.decide(.live(identity.identity), context: context)
                case .success(.stores(let reply)):
                    let store = cache.store
                    self.answer(context: context) {
                        await SessionAuthenticator.answer(logger: logger) { try await store.validateSession(tokenHash, after: reply, now: now) }
                    }
                case .failure(let error):
                    logger.error("session check failed; refusing", metadata: ["error": "\(error)"])
                    self.decide(.failed, context: context)
                }
            }
        }
    }

    /// Runs a lookup off the loop and decides with its answer on the loop.
    private func answer(context: ChannelHandlerContext, _ lookup: @escaping @Sendable () async -> SessionAnswer) {
        let promise = context.eventLoop.makePromise(of: SessionAnswer.self)
        promise.completeWithTask(lookup)
        promise.futureResult.assumeIsolated().whenSuccess { self.decide($0, context: context) }
    }

    /// The decision, once the session is known.
    private func decide(_ session: SessionAnswer, context: ChannelHandlerContext) {
        guard active, let taken else { return }
        self.taken = nil
        render(taken.pending.decide(session), head: taken.head, client: taken.client, started: taken.started, context: context)
    }

    /// Renders a decision: forwards, or writes its answer.
    private func render(_ decision: GatewayDecision, head: HTTPRequest, client: ForwardingContext, started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        if case .forward(let upstream) = decision {
            exchange = Exchange(upstream, path: (head.path ?? "/").prefix { $0 != "?" }, started: started)
            return connect(context: context)
        }
        guard let answer = GatewayAnswer(decision, requestId: client.requestId, identity: settings.gateway.identityFields) else {
            // `.reserved` is passed before any lookup, and a forward is exchanged above.
            pass(head, context: context)
            if pendingEnded { context.fireChannelRead(wrapInboundOut(.end(nil))) }
            return finish(context: context)
        }
        write(answer, method: head.method)
        AccessLog.request(
            settings.logger, method: head.method, path: (head.path ?? "/").prefix { $0 != "?" }, status: answer.status, started: started,
            requestId: client.requestId, served: .fastPath
        )
        finish(context: context)
    }

    /// The pending request is answered (or handed on): replay what was held behind it.
    private func finish(context: ChannelHandlerContext) {
        if disposition == .pending { disposition = .answered }
        while disposition != .pending, let next = held.popFirst() {
            switch next {
            case .part(let part): route(part, context: context)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        if disposition != .pending {
            // Hummingbird flushes its reads on read-complete: tell it when it was given any.
            if readsSinceComplete {
                readsSinceComplete = false
                context.fireChannelReadComplete()
            }
            readIfWanted(context: context)
        }
    }

    /// A decision's answer, written as HTTP/1 below the HTTP types codec like the upstream
    /// responses, with `Content-Length` and `Date`; no body for HEAD.
    private func write(_ answer: GatewayAnswer, method: HTTPRequest.Method) {
        guard let http1 = http1Context else { return }
        var headers = HTTPHeaders()
        headers.reserveCapacity(answer.headers.count + 2)
        for field in answer.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(answer.body.utf8.count))
        headers.add(name: "Date", value: currentDate())
        let status = HTTPResponseStatus(statusCode: answer.status)
        http1.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if method != .head, !answer.body.isEmpty {
            http1.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
        }
        http1.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
    }

    private func currentDate() -> String {
        let second = Int64(Date().timeIntervalSince1970)
        if second != date.second { date = (second, HTTPDate.imfFixdate(secondsSince1970: second)) }
        return date.text
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if mayRead(context: context) {
            context.read()
        } else {
            readWanted = true
        }
    }

    /// Backpressure: no more reading once something is held behind a pending answer, or while
    /// the client is not reading the answers it has, so a pipelining client cannot grow our
    /// buffers beyond one read. Reading on while nothing is held keeps the socket registered
    /// for reads: pausing on every pending answer cost two `epoll_ctl` calls per request.
    private func mayRead(context: ChannelHandlerContext) -> Bool {
        (disposition != .pending || held.isEmpty) && context.channel.isWritable
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        readIfWanted(context: context)
        if context.channel.isWritable { exchange?.connection?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    private func readIfWanted(context: ChannelHandlerContext) {
        guard readWanted, mayRead(context: context) else { return }
        readWanted = false
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { inHummingbird = max(0, inHummingbird - 1) }
        context.write(data, promise: promise)
    }
}

// MARK: Proxy

extension FastPathHandler: UpstreamResponder {
    private func connect(context: ChannelHandlerContext, fresh: Bool = false) {
        guard let pool, let upstream = exchange?.upstream else { return }
        pool.withConnection(to: upstream, fresh: fresh) { result, reused in
            guard self.active, let exchange = self.exchange else {
                if case .success(let connection) = result { connection.abandon() }
                return
            }
            switch result {
            case .success(let connection):
                exchange.connection = connection
                exchange.reused = reused
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
            exchange.status = Int(head.status.code)
            let headers = ProxyHeaders.clientResponse(head.headers, requestId: exchange.requestId, date: currentDate())
            http1.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
        case .body(let buffer):
            http1.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            // Logged before the end leaves, so the line is there when the client has its answer.
            logExchange(status: exchange.status ?? 0)
            http1.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            self.exchange = nil
            finish(context: context)
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamFailed(_ failure: UpstreamFailure) {
        guard let context, let current = exchange else { return }
        if current.status != nil {
            // Part of the response is out: the client can only learn of the failure by the close.
            settings.logger.warning("upstream failed mid-response", metadata: ["error": "\(failure)", "request_id": "\(current.requestId)"])
            exchange = nil
            context.close(promise: nil)
        } else if failure == .closedBeforeResponse, current.reused, !current.retried {
            // A kept-alive connection the upstream closed as it was taken: GET and HEAD are
            // idempotent, so once more, on a new connection.
            current.connection = nil
            current.reused = false
            current.retried = true
            connect(context: context, fresh: true)
        } else {
            answerFailure(failure, error: failure, context: context)
        }
    }

    /// 504 when the upstream was too slow, else 502; JSON, never a hang.
    private func answerFailure(_ failure: UpstreamFailure, error: any Error, context: ChannelHandlerContext) {
        guard let current = exchange else { return }
        settings.logger.warning("upstream failed", metadata: ["error": "\(error)", "request_id": "\(current.requestId)"])
        let answer = GatewayAnswer(error: .upstreamFailure(timedOut: failure == .timedOut), requestId: current.requestId)
        logExchange(status: answer.status)
        write(answer, method: current.method)
        exchange = nil
        finish(context: context)
    }

    /// The request's ``AccessLog`` line.
    private func logExchange(status: Int) {
        guard let current = exchange else { return }
        AccessLog.request(settings.logger, method: current.method, path: current.path, status: status, started: current.started, requestId: current.requestId, served: .fastPath)
    }
}
