import NIOCore
import NIOHTTP1

/// HTTP/1.0 clients on any path (event loop or router): their responses are framed the way
/// HTTP/1.0 reads them and the connection closes unless they asked for keep-alive. Also
/// where ``ClientConnectionGuard`` learns of each request's start and each response's end.
///
/// Hummingbird and the event-loop path both answer in HTTP/1.1 terms, and HTTP/1.1 keeps a
/// connection open by default, where an HTTP/1.0 client waits for the close that ends the
/// response (and cannot read chunked framing). This handler sits below the HTTP types codec,
/// where the request's version is still known: a response to an HTTP/1.0 request goes out as
/// HTTP/1.0 (so the encoder never chunks), with `Connection: keep-alive` only when the client
/// asked for it and the response is length-delimited, else `Connection: close` and a close
/// once the response is written. HTTP/1.1 requests pass untouched.
final class HTTP10Framing: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What a response must do for its request, oldest first (requests may be pipelined).
    private enum Framing {
        /// HTTP/1.1: as the responder wrote it.
        case http11
        /// HTTP/1.0 that asked for keep-alive.
        case http10(keepAlive: Bool)
    }

    private var requests = CircularBuffer<Framing>()
    /// Whether the response being written ends the connection.
    private var closeAfterResponse = false
    /// The connection's timers, told of each request's start and each response's end (it
    /// lives as long as the connection and holds nothing of this handler).
    private var connectionGuard: ClientConnectionGuard?

    func handlerAdded(context: ChannelHandlerContext) {
        connectionGuard = try? context.pipeline.syncOperations.handler(type: ClientConnectionGuard.self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requests.append(head.version == .http1_0 ? .http10(keepAlive: head.isKeepAlive) : .http11)
            connectionGuard?.headDecoded()
        case .body(let body):
            connectionGuard?.bodyReceived(body.readableBytes)
        case .end:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            guard case .http10(let keepAlive) = requests.first else { return context.write(data, promise: promise) }
            head.version = .http1_0
            let delimited = head.headers.contains(name: "content-length") || head.status == .noContent || head.status == .notModified
            let keep = keepAlive && delimited
            head.headers.remove(name: "transfer-encoding")
            head.headers.replaceOrAdd(name: "connection", value: keep ? "keep-alive" : "close")
            closeAfterResponse = !keep
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            if !requests.isEmpty { requests.removeFirst() }
            if requests.isEmpty { connectionGuard?.responseEnded() }
            guard closeAfterResponse else { return context.write(data, promise: promise) }
            closeAfterResponse = false
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(data, promise: written)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
        default:
            context.write(data, promise: promise)
        }
    }
}
