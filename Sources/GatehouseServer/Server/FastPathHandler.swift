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
        /// The in-process session cache (with Redis); without it lookups go to the stores.
        let cache: LocalSessionCache?
        let gateway: Gateway
        let upstreams: UpstreamConnectionPool
        let logger: Logger
    }

    /// A request taken here, waiting for its session lookup.
    struct Taken {
        let head: HTTPRequest
        let client: ForwardingContext
        let pending: PendingDecision
        let started: ContinuousClock.Instant
    }

    /// The responder: what the request taken here is waiting for.
    enum Responding {
        /// Nothing taken.
        case idle
        /// Its session lookup.
        case lookingUp(Taken)
        /// Its upstream's response.
        case exchanging(UpstreamExchange)
    }

    let settings: Settings
    var context: ChannelHandlerContext?
    private var cache: LoopSessionCache?
    var pool: LoopUpstreamPool?
    /// HTTP/1 order on this connection.
    private var ordering = HTTP1Ordering()
    var responding = Responding.idle
    /// The context of Hummingbird's HTTP/1 ⇄ HTTP types codec, below which answers are written;
    /// without it nothing is answered here.
    var http1Context: ChannelHandlerContext?
    private var requestIds = RequestIdSequence()
    var active = true
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
        // stateless conversion): upstream responses are HTTP/1 already, and an answer has no
        // use for HTTP types fields built only to be converted back.
        http1Context = try? context.pipeline.syncOperations.context(handlerType: HTTP1ToHTTPServerCodec.self)
        // HTTP/1.0 framing for both paths, below the codec (where the version is known).
        if let codec = http1Context?.handler {
            try? context.pipeline.syncOperations.addHandler(HTTP10Framing(), position: .before(codec))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        if case .exchanging(let exchange) = responding {
            responding = .idle
            exchange.connection?.abandon()
        }
        context.fireChannelInactive()
    }

    // MARK: Inbound: HTTP/1 order

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let part = ordering.receive(unwrapInboundIn(data)) { route(part, context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !ordering.hold(.event(event)) { context.fireUserInboundEventTriggered(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !ordering.hold(.error(error)) { context.fireErrorCaught(error) }
    }

    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            take(head, context: context)
        case .body, .end:
            if ordering.state == .hummingbird {
                ordering.handedOnPart()
                context.fireChannelRead(wrapInboundOut(part))
            }
        }
    }

    private func pass(_ head: HTTPRequest, context: ChannelHandlerContext) {
        ordering.handOn()
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        ordering.readComplete()
        context.fireChannelReadComplete()
    }

    /// The pending request is answered (or handed on): replay what was held behind it.
    func finish(context: ChannelHandlerContext) {
        ordering.answered()
        while let next = ordering.nextHeld() {
            switch next {
            case .part(let part): route(part, context: context)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        if !ordering.isPending {
            // Hummingbird flushes its reads on read-complete: tell it when it was given any.
            if ordering.readsSinceComplete {
                ordering.readComplete()
                context.fireChannelReadComplete()
            }
            readIfWanted(context: context)
        }
    }

    // MARK: The decision

    /// Decides a request here, or passes it to Hummingbird when only the router can answer it.
    private func take(_ head: HTTPRequest, context: ChannelHandlerContext) {
        guard ordering.mayTake, http1Context != nil, head.method == .get || head.method == .head, Self.isPlainBodiless(head.headerFields)
        else { return pass(head, context: context) }
        let started = ContinuousClock.now
        let client = ForwardingContext(connection: connection, headers: head.headerFields, authority: head.authority) { requestIds.next() }
        switch settings.gateway.policy.examine(head, client: client) {
        case .decided(.reserved):
            pass(head, context: context)
        case .decided(let decision):
            if case .forward(let upstream) = decision, !canExchange(with: upstream.upstream) { return pass(head, context: context) }
            ordering.take()
            render(decision, head: head, client: client, started: started, context: context)
        case .needsSession(let pending):
            if let upstream = pending.upstream, !canExchange(with: upstream) { return pass(head, context: context) }
            ordering.take()
            responding = .lookingUp(Taken(head: head, client: client, pending: pending, started: started))
            lookUp(pending.cookies, context: context)
        }
    }

    /// Whether this loop can forward to `upstream` itself (plain HTTP, a pool).
    private func canExchange(with upstream: UpstreamTarget) -> Bool {
        pool != nil && upstream.scheme == "http"
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
                self.settings.gateway.metrics.metrics.lookup(.local)
                return self.decide(.live(hit.identity), context: context)
            }
            guard cache.canLoad else {
                return self.answer(context: context) { await authenticator.answer(cookies: cookies, logger: logger) }
            }
            cache.load(tokenHash, nowMilliseconds: Timestamp.milliseconds(now)).assumeIsolated().whenComplete { result in
                switch result {
                case .success(.identity(let identity)):
                    self.settings.gateway.metrics.metrics.lookup(.hit)
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
        guard active, case .lookingUp(let taken) = responding else { return }
        responding = .idle
        render(taken.pending.decide(session), head: taken.head, client: taken.client, started: taken.started, context: context)
    }

    /// Renders a decision: forwards, or writes its answer.
    private func render(_ decision: GatewayDecision, head: HTTPRequest, client: ForwardingContext, started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        if case .forward(let upstream) = decision {
            let exchange = UpstreamExchange(upstream, path: (head.path ?? "/").prefix { $0 != "?" }, authority: head.authority, started: started)
            responding = .exchanging(exchange)
            return connect(exchange, context: context)
        }
        guard let decided = GatewayAnswer(decision, requestId: client.requestId, identity: settings.gateway.identityFields) else {
            // `.reserved` is passed before any lookup, and a forward is exchanged above.
            let ended = ordering.pendingEnded
            pass(head, context: context)
            if ended { context.fireChannelRead(wrapInboundOut(.end(nil))) }
            return finish(context: context)
        }
        let answer = settings.gateway.answer(decided, to: head, client: client)
        write(answer, method: head.method)
        AccessLog.request(
            settings.logger, method: head.method, path: (head.path ?? "/").prefix { $0 != "?" }, authority: head.authority, status: answer.status,
            started: started, requestId: client.requestId, served: .fastPath, metrics: settings.gateway.metrics
        )
        finish(context: context)
    }

    /// A decision's answer, written as HTTP/1 below the HTTP types codec like the upstream
    /// responses, with `Content-Length` and `Date`; no body for HEAD.
    func write(_ answer: GatewayAnswer, method: HTTPRequest.Method) {
        guard let http1 = http1Context else { return }
        http1.write(NIOAny(HTTPServerResponsePart.head(answer.http1Head(date: currentDate()))), promise: nil)
        if let body = answer.http1Body(method: method) {
            http1.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        }
        http1.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
    }

    func currentDate() -> String {
        let second = Int64(Date().timeIntervalSince1970)
        if second != date.second { date = (second, HTTPDate.imfFixdate(secondsSince1970: second)) }
        return date.text
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if ordering.mayRead(writable: context.channel.isWritable) {
            context.read()
        } else {
            ordering.readWanted = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        readIfWanted(context: context)
        if context.channel.isWritable, case .exchanging(let exchange) = responding { exchange.connection?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    private func readIfWanted(context: ChannelHandlerContext) {
        guard ordering.readWanted, ordering.mayRead(writable: context.channel.isWritable) else { return }
        ordering.readWanted = false
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { ordering.hummingbirdResponseEnded() }
        context.write(data, promise: promise)
    }
}
