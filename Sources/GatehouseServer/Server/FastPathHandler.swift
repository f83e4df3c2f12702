import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Answers the hot requests on the event loop and passes every other request to Hummingbird
/// untouched (SPEC §3). It sits after HTTP decoding and before Hummingbird in every HTTP/1
/// connection, and answers two kinds of request:
/// - `GET|HEAD /auth/verify` and `/auth/forward` for a live session: `200` + identity;
/// - `GET|HEAD` without a body on a proxied route over plain HTTP, forwarded on a keep-alive
///   connection of this loop's ``LoopUpstreamPool`` (a route with `auth: required` only for a
///   live session).
///
/// A session is live when the loop's ``LoopSessionCache`` holds it, one Redis GET on the
/// loop's own connection finds it, or (when Redis cannot be asked) one SQLite read on a
/// thread pool does. Anything else (no cookie, a rejected or unknown session, several session
/// cookies, a body, a `Connection` header other than `keep-alive`, `Upgrade`, an `https`
/// upstream) goes to Hummingbird, whose controllers and ``ReverseProxyMiddleware`` decide
/// exactly as they would without this handler. Fail closed (I5): the only 2xx written for a
/// verify carries `X-User-Id`, and a request to an `auth: required` route is forwarded only
/// with the identity of a live session, set after every client-sent spelling was removed.
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

    /// What a request taken here asks for.
    private enum Plan {
        case verify
        case proxy(ProxyPlan)
    }

    private struct ProxyPlan {
        let upstream: UpstreamTarget
        let path: String
        let query: Substring
        let auth: RouteAuth
    }

    /// An upstream exchange in progress.
    private final class Exchange {
        let request: HTTPRequestHead
        let requestId: String
        let method: HTTPRequest.Method
        let path: Substring
        let upstream: UpstreamTarget
        let started = ContinuousClock.now
        var connection: UpstreamConnectionHandler?
        var reused = false
        /// Already retried once on a new connection.
        var retried = false
        /// The response's status, once its head was written to the client.
        var status: Int?

        init(request: HTTPRequestHead, requestId: String, method: HTTPRequest.Method, path: Substring, upstream: UpstreamTarget) {
            self.request = request
            self.requestId = requestId
            self.method = method
            self.path = path
            self.upstream = upstream
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
    /// The head and plan of a request waiting for its session lookup.
    private var candidate: (head: HTTPRequest, plan: Plan)?
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
    private lazy var peer: (address: String, trusted: Bool) = {
        let address = context?.channel.remoteAddress?.ipAddress ?? "unknown"
        return (address, ClientAddress.isTrusted(address, settings.gateway.configuration.trustedProxies))
    }()

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
            guard inHummingbird == 0, let (plan, session) = plan(for: head) else { return pass(head, context: context) }
            disposition = .pending
            pendingEnded = false
            if let session, let cache {
                candidate = (head, plan)
                decide(session, cache: cache, context: context)
            } else if case .proxy(let proxy) = plan, proxy.auth == .none {
                forward(head, plan: proxy, user: nil, context: context)
            } else {
                // Not reached (`plan(for:)` asks for a session where one is needed); were it
                // reached, the router decides: never forwarded without an identity (I5).
                pass(head, context: context)
            }
        case .body, .end:
            if disposition == .hummingbird {
                readsSinceComplete = true
                context.fireChannelRead(wrapInboundOut(part))
            }
        }
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

    /// What this handler would do with a request and the session it must check first, or
    /// `nil` for Hummingbird. A verify, or a route with `auth: required`, is only taken with
    /// one well-formed session cookie and the in-process cache to check it in.
    private func plan(for head: HTTPRequest) -> (Plan, session: TokenHash?)? {
        guard head.method == .get || head.method == .head, let path = head.path, Self.isPlainBodiless(head.headerFields) else { return nil }
        guard http1Context != nil else { return nil }
        if Self.isVerifyPath(path) {
            guard cache != nil, let session = sessionToken(head) else { return nil }
            return (.verify, session)
        }
        guard pool != nil, case .matched(let route, let upstream, let forwardedPath, let query) = settings.gateway.resolve(target: path, authority: head.authority),
            upstream.scheme == "http"
        else { return nil }
        let plan = Plan.proxy(ProxyPlan(upstream: upstream, path: forwardedPath, query: query, auth: route.auth))
        guard route.auth == .required else { return (plan, nil) }
        guard cache != nil, let session = sessionToken(head) else { return nil }
        return (plan, session)
    }

    /// Whether a request's fields announce no body, no upgrade, no `Connection` option but
    /// `keep-alive`, and no second `Host` (the first is the authority; a second one is the
    /// router's to refuse): one pass over the fields.
    static func isPlainBodiless(_ fields: HTTPFields) -> Bool {
        for field in fields {
            switch field.name {
            case .transferEncoding, .upgrade, .host: return false
            case .contentLength where field.value != "0": return false
            case .connection where field.value.lowercased() != "keep-alive": return false
            default: continue
            }
        }
        return true
    }

    /// The token hash of the request's one well-formed session cookie, or `nil` (several
    /// cookies of the name: the controller tries each in order).
    private func sessionToken(_ head: HTTPRequest) -> TokenHash? {
        let cookies = head.headerFields[values: .cookie]
        guard let presented = CookieHeader.onlyValue(named: settings.gateway.configuration.cookie.name, in: cookies) else { return nil }
        return SessionToken.hash(ofCookieValue: presented)
    }

    static func isVerifyPath(_ path: String) -> Bool {
        for endpoint in ["/auth/verify", "/auth/forward"] where path.hasPrefix(endpoint) {
            let rest = path.utf8.dropFirst(endpoint.utf8.count)
            if rest.isEmpty || rest.first == UInt8(ascii: "?") { return true }
        }
        return false
    }

    /// Looks the session up: from memory after the current batch of reads, so that an
    /// invalidation already received by this loop is applied first; else from Redis or SQLite.
    private func decide(_ tokenHash: TokenHash, cache: LoopSessionCache, context: ChannelHandlerContext) {
        context.eventLoop.assumeIsolated().execute {
            let now = Timestamp.milliseconds(Date())
            if let identity = cache.lookup(tokenHash, nowMilliseconds: now) {
                self.resolve(identity, context: context)
            } else {
                // Redis (one GET on this loop's connection) while it can be asked, else SQLite.
                let load = cache.canLoad ? cache.load(tokenHash, nowMilliseconds: now) : cache.loadFromDatabase(tokenHash, nowMilliseconds: now)
                load.assumeIsolated().whenComplete { result in
                    self.resolve(try? result.get(), context: context)
                }
            }
        }
    }

    /// Acts on a session lookup: answer or forward for a live session, else Hummingbird decides.
    private func resolve(_ identity: CachedIdentity?, context: ChannelHandlerContext) {
        guard active, let (head, plan) = candidate else { return }
        candidate = nil
        switch (plan, identity) {
        case (.verify, let identity?):
            writeIdentity(identity)
            finish(context: context)
        case (.proxy(let proxy), let identity?):
            forward(head, plan: proxy, user: ForwardedIdentity(userId: identity.userId, email: identity.email), context: context)
        case (_, nil):
            pass(head, context: context)
            if pendingEnded { context.fireChannelRead(wrapInboundOut(.end(nil))) }
            finish(context: context)
        }
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

    /// `200` with the identity, as ``VerifyController`` answers it (never cached: I5), written
    /// as HTTP/1 below the HTTP types codec like the proxy's responses.
    private func writeIdentity(_ identity: CachedIdentity) {
        guard let http1 = http1Context else { return }
        var headers = HTTPHeaders()
        headers.reserveCapacity(5)
        headers.add(name: settings.gateway.identityFields.userId.rawName, value: identity.userId)
        headers.add(name: settings.gateway.identityFields.email.rawName, value: identity.email)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Content-Length", value: "0")
        headers.add(name: "Date", value: currentDate())
        http1.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
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
    /// Forwards a bodiless request as `user` (identity headers stripped in every spelling,
    /// then set from the session: I5), with the same header rules as ``ReverseProxyMiddleware``.
    private func forward(_ head: HTTPRequest, plan: ProxyPlan, user: ForwardedIdentity?, context: ChannelHandlerContext) {
        let configuration = settings.gateway.configuration
        let forwarding = ForwardingContext(peer: peer.address, trusted: peer.trusted, headers: head.headerFields, authority: head.authority) { requestIds.next() }
        let headers = ProxyHeaders.upstreamRequest(
            head.headerFields, host: head.authority ?? plan.upstream.address, identity: settings.gateway.identityFields, user: user,
            cookieName: configuration.cookie.name, client: forwarding
        )
        let target = head.path ?? "/"
        let request = HTTPRequestHead(
            version: .http1_1, method: head.method == .head ? .HEAD : .GET, uri: plan.upstream.basePath + plan.path + plan.query, headers: headers
        )
        exchange = Exchange(request: request, requestId: forwarding.requestId, method: head.method, path: target.prefix { $0 != "?" }, upstream: plan.upstream)
        connect(context: context)
    }

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
        let authError: AuthError = failure == .timedOut ? .upstreamTimeout : .upstreamUnavailable
        let body = ByteBuffer(string: authError.json.string)
        var fields = HTTPFields()
        fields.reserveCapacity(5)
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        fields[.contentLength] = String(body.readableBytes)
        fields[.xRequestId] = current.requestId
        fields[.date] = currentDate()
        logExchange(status: authError.status)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .init(code: authError.status), headerFields: fields))), promise: nil)
        if current.method != .head { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        exchange = nil
        finish(context: context)
    }

    /// The per-request line ``APIErrorMiddleware`` writes for Hummingbird's answers.
    private func logExchange(status: Int) {
        guard settings.logger.logLevel <= .info, let current = exchange else { return }
        settings.logger.info(
            "request",
            metadata: [
                "method": "\(current.method)", "path": "\(current.path)", "status": "\(status)",
                "ms": "\((ContinuousClock.now - current.started).milliseconds)", "request_id": "\(current.requestId)", "served": "fast_path",
            ]
        )
    }
}
