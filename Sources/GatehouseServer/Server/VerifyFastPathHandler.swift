import Foundation
import GatehouseCore
import GatehouseStore
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `GET|HEAD /auth/verify` and `/auth/forward` for a live session on the event loop,
/// from the loop's ``LoopSessionCache``, one Redis GET on the loop's own connection, or (when
/// Redis cannot be asked) one SQLite read on a thread pool, and passes every other request
/// to Hummingbird untouched (SPEC §3). It sits after HTTP decoding and before Hummingbird in
/// every HTTP/1 connection.
///
/// It only ever answers "200, this user": a request it cannot answer that way (no cookie, a
/// rejected or unknown session, several session cookies, a body, a `Connection` header other
/// than `keep-alive`, `Upgrade`) goes to the ``VerifyController``, which decides exactly as
/// before. Fail closed (I5): the only 2xx written here carries `X-User-Id`.
///
/// HTTP/1 order: a request is answered here only when Hummingbird has finished every response
/// on the connection, and while an answer is pending later requests are held (and reading
/// paused), so responses leave in the order requests came.
final class VerifyFastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What every connection's handler needs; built once per server.
    struct Settings: Sendable {
        let cache: LocalSessionCache
        let cookieName: String
        let userIdHeader: HTTPField.Name
        let emailHeader: HTTPField.Name
    }

    /// Where the parts of the request being read go.
    private enum Disposition {
        /// To Hummingbird.
        case hummingbird
        /// Nowhere: answered here.
        case answered
        /// Not decided yet: held until the answer is known.
        case undecided
    }

    private let settings: Settings
    private var cache: LoopSessionCache?
    private var disposition = Disposition.hummingbird
    /// Requests given to Hummingbird whose response has not ended yet.
    private var inHummingbird = 0
    /// What arrived while a request was undecided, in order: parts, and the events and errors
    /// that must not overtake its answer (a half-close, a quiesce, a parse error).
    private enum Held {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }

    private var held = CircularBuffer<Held>()
    /// The undecided request's head.
    private var candidate: HTTPRequest?
    private var readWanted = false
    private var active = true
    private var date: (second: Int64, text: String) = (0, "")

    init(settings: Settings) {
        self.settings = settings
    }

    func handlerAdded(context: ChannelHandlerContext) {
        cache = settings.cache.cache(for: context.eventLoop)
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if disposition == .undecided {
            held.append(.part(part))
        } else {
            route(part, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if disposition == .undecided {
            held.append(.event(event))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if disposition == .undecided {
            held.append(.error(error))
        } else {
            context.fireErrorCaught(error)
        }
    }

    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            if inHummingbird == 0, let cache, let tokenHash = fastPathToken(head) {
                disposition = .undecided
                candidate = head
                decide(tokenHash, cache: cache, context: context)
            } else {
                disposition = .hummingbird
                inHummingbird += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
        case .body, .end:
            if disposition == .hummingbird { context.fireChannelRead(wrapInboundOut(part)) }
        }
    }

    /// The token hash of a request this handler may answer, or `nil`.
    private func fastPathToken(_ head: HTTPRequest) -> TokenHash? {
        guard head.method == .get || head.method == .head, let path = head.path, Self.isVerifyPath(path) else { return nil }
        let fields = head.headerFields
        guard fields[.transferEncoding] == nil, fields[.contentLength] == nil || fields[.contentLength] == "0",
            fields[.connection].map({ $0.lowercased() == "keep-alive" }) ?? true, fields[.upgrade] == nil
        else { return nil }
        let presented = CookieHeader.values(named: settings.cookieName, in: fields[values: .cookie])
        // Several cookies of the name: the controller tries each in order.
        guard presented.count == 1, let token = SessionToken(cookieValue: presented[0]) else { return nil }
        return token.hash
    }

    static func isVerifyPath(_ path: String) -> Bool {
        for endpoint in ["/auth/verify", "/auth/forward"] where path.hasPrefix(endpoint) {
            let rest = path.utf8.dropFirst(endpoint.utf8.count)
            if rest.isEmpty || rest.first == UInt8(ascii: "?") { return true }
        }
        return false
    }

    /// Answers from memory after the current batch of reads, so that an invalidation already
    /// received by this loop is applied first; else from Redis or SQLite; else Hummingbird.
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

    private func resolve(_ identity: CachedIdentity?, context: ChannelHandlerContext) {
        guard active, let head = candidate else { return }
        candidate = nil
        if let identity {
            disposition = .answered
            writeIdentity(identity, context: context)
        } else {
            disposition = .hummingbird
            inHummingbird += 1
            context.fireChannelRead(wrapInboundOut(.head(head)))
        }
        while disposition != .undecided, let next = held.popFirst() {
            switch next {
            case .part(let part): route(part, context: context)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            case .error(let error): context.fireErrorCaught(error)
            }
        }
        if disposition != .undecided {
            context.fireChannelReadComplete()
            readIfWanted(context: context)
        }
    }

    private func writeIdentity(_ identity: CachedIdentity, context: ChannelHandlerContext) {
        var fields = HTTPFields()
        fields.reserveCapacity(5)
        fields[settings.userIdHeader] = identity.userId
        fields[settings.emailHeader] = identity.email
        fields[.cacheControl] = "no-store"
        fields[.contentLength] = "0"
        fields[.date] = currentDate()
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .ok, headerFields: fields))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func currentDate() -> String {
        let second = Int64(Date().timeIntervalSince1970)
        if second != date.second { date = (second, HTTPDate.imfFixdate(secondsSince1970: second)) }
        return date.text
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        // Backpressure: no more reading while a request waits for its answer, or while the
        // client is not reading the answers it has (a pipelining client cannot grow our buffers).
        if disposition == .undecided || !context.channel.isWritable {
            readWanted = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        readIfWanted(context: context)
        context.fireChannelWritabilityChanged()
    }

    private func readIfWanted(context: ChannelHandlerContext) {
        guard readWanted, disposition != .undecided, context.channel.isWritable else { return }
        readWanted = false
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { inHummingbird = max(0, inHummingbird - 1) }
        context.write(data, promise: promise)
    }
}
