import NIOCore
import NIOHTTP1
import NIOPosix

/// Where forwarded requests go.
struct Upstream: Sendable {
    /// Host name or address.
    var host: String
    /// TCP port.
    var port: Int
}

/// One client connection: answers `GET /ok`, forwards anything else over its own upstream
/// connection. `HTTPServerPipelineHandler` in front holds a pipelined request back until the
/// previous response has ended, so there is one exchange at a time.
final class ReferenceHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let upstream: Upstream
    private var context: ChannelHandlerContext?
    /// The connected upstream, kept open across exchanges while both sides keep alive.
    private var upstreamChannel: (any Channel)?
    private var connecting = false
    /// Request parts written before the upstream connection was up.
    private var pending: [HTTPClientRequestPart] = []
    /// The current request is `GET /ok`, answered here.
    private var answeringOK = false
    private var requestVersion = HTTPVersion.http1_1
    private var requestKeepAlive = true
    /// A request went upstream and its response has not ended.
    private var exchanging = false
    /// The response head went to the client and its end has not.
    private var responding = false

    init(upstream: Upstream) {
        self.upstream = upstream
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestVersion = head.version
            requestKeepAlive = head.isKeepAlive
            answeringOK = head.method == .GET && head.uri == "/ok"
            if !answeringOK {
                exchanging = true
                var headers = head.headers
                headers.remove(name: "connection")
                headers.remove(name: "keep-alive")
                forward(.head(HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)), flush: false)
            }
        case .body(let body):
            if !answeringOK {
                forward(.body(.byteBuffer(body)), flush: false)
            }
        case .end(let trailers):
            if answeringOK {
                respond(status: .ok, context: context)
            } else {
                forward(.end(trailers), flush: true)
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Backpressure: stop reading the upstream while the client cannot take more.
        upstreamChannel?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstreamChannel?.close(promise: nil)
        upstreamChannel = nil
        pending = []
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // The client side.

    private func respond(status: HTTPResponseStatus, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("content-length", "0")])
        addConnectionHeader(to: &headers)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: requestVersion, status: status, headers: headers))), promise: nil)
        finishResponse(.end(nil), context: context)
    }

    private func addConnectionHeader(to headers: inout HTTPHeaders) {
        if !requestKeepAlive {
            headers.add(name: "connection", value: "close")
        } else if requestVersion == .http1_0 {
            headers.add(name: "connection", value: "keep-alive")
        }
    }

    private func finishResponse(_ end: HTTPServerResponsePart, context: ChannelHandlerContext) {
        exchanging = false
        responding = false
        if requestKeepAlive {
            context.writeAndFlush(wrapOutboundOut(end), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(end)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    // Called by `UpstreamHandler`, on this event loop.

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        guard let context else { return }
        var headers = head.headers
        headers.remove(name: "connection")
        headers.remove(name: "keep-alive")
        addConnectionHeader(to: &headers)
        responding = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: requestVersion, status: head.status, headers: headers))), promise: nil)
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    }

    func upstreamResponseEnd(_ trailers: HTTPHeaders?, upstreamKeepsAlive: Bool) {
        if !upstreamKeepsAlive, let closing = upstreamChannel {
            // Forgotten first: closing runs channelInactive, which must not take this for a
            // connection lost in the middle of the response.
            upstreamChannel = nil
            closing.close(promise: nil)
        }
        guard let context else { return }
        finishResponse(.end(trailers), context: context)
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamClosed(_ channel: any Channel) {
        guard upstreamChannel === channel else { return }
        upstreamChannel = nil
        if responding {
            // Closed in the middle of a response: the client cannot get a whole one any more.
            context?.close(promise: nil)
        } else if exchanging {
            // Closed (an idle keep-alive connection timing out) as the request went out.
            upstreamFailed()
        }
    }

    // The upstream side.

    private func forward(_ part: HTTPClientRequestPart, flush: Bool) {
        if let upstreamChannel {
            if flush {
                upstreamChannel.writeAndFlush(part, promise: nil)
            } else {
                upstreamChannel.write(part, promise: nil)
            }
            return
        }
        pending.append(part)
        if !connecting {
            connect()
        }
    }

    private func connect() {
        guard let context else { return }
        connecting = true
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .assumeIsolated()
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let channel):
                    guard self.context != nil else {
                        channel.close(promise: nil)
                        return
                    }
                    do {
                        try channel.pipeline.syncOperations.addHandler(UpstreamHandler(owner: self))
                    } catch {
                        channel.close(promise: nil)
                        self.upstreamFailed()
                        return
                    }
                    self.upstreamChannel = channel
                    for part in self.pending {
                        channel.write(part, promise: nil)
                    }
                    self.pending = []
                    channel.flush()
                case .failure:
                    self.upstreamFailed()
                }
            }
    }

    private func upstreamFailed() {
        pending = []
        guard let context else { return }
        requestKeepAlive = false
        respond(status: .badGateway, context: context)
    }
}
