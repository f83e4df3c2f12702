import NIOCore
import NIOHTTP1

/// The end of an upstream connection: hands each response part to the client connection
/// that owns it, on the same event loop.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let owner: ReferenceHandler
    private var keepAlive = true

    init(owner: ReferenceHandler) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            owner.upstreamResponseHead(head)
        case .body(let body):
            owner.upstreamResponseBody(body)
        case .end(let trailers):
            owner.upstreamResponseEnd(trailers, upstreamKeepsAlive: keepAlive)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner.upstreamClosed(context.channel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
