import Foundation
import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Answers a WebSocket upgrade the gateway refused with the gateway's answer, as for any
/// request to the route: `401` with the JSON error body without a session, `403`, `404`…
///
/// Hummingbird answers an upgrade it was told not to make with an empty `400` of its own and
/// closes the connection. ``WebSocketProxy`` adds this handler to that connection's pipeline
/// before Hummingbird's HTTP/1 handlers are added (so it sees HTTP/1 parts, below them), and it
/// writes the decision's answer in place of the first response written there; anything after
/// it passes unchanged.
final class RefusedUpgradeHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let answer: GatewayAnswer
    let method: HTTPRequest.Method
    /// Whether the response being replaced has ended.
    private var replaced = false

    init(answer: GatewayAnswer, method: HTTPRequest.Method) {
        self.answer = answer
        self.method = method
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !replaced else { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .head:
            let date = HTTPDate.imfFixdate(secondsSince1970: Int64(Date().timeIntervalSince1970))
            // The connection closes after this answer, as after Hummingbird's own.
            context.write(wrapOutboundOut(.head(answer.http1Head(date: date, extraHeaders: ["Connection": "close"]))), promise: nil)
            if let body = answer.http1Body(method: method) { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            promise?.succeed()
        case .body:
            promise?.succeed()
        case .end:
            replaced = true
            context.write(data, promise: promise)
        }
    }
}
