import NIOCore

/// One command to send, with the promise its reply completes.
struct RedisRequest: Sendable {
    /// Command and arguments, binary-safe.
    let arguments: [[UInt8]]
    /// How long to wait for the reply.
    let timeout: TimeAmount
    /// Completed with the reply, or failed with a ``RedisError``.
    let promise: EventLoopPromise<RESPValue>
}

/// Pipelines commands on one connection: requests are written as they come and replies,
/// which Redis sends in order, complete them first-in first-out. Encoding and parsing are
/// hiredis's; this handler only keeps the queue. Everything runs on the channel's event loop.
///
/// A request that times out is failed at once but keeps its place in the queue, so that its
/// late reply is matched to it and dropped instead of being given to the next request.
///
/// On a subscribed connection (`onMessage` set), published messages — arrays that begin with
/// `message` — are not replies: they go to `onMessage` and leave the queue alone.
final class RedisConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = [RedisRequest]
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let id: UInt64
        var promise: EventLoopPromise<RESPValue>?
        let sentAt: NIODeadline
        var timeoutTask: Scheduled<Void>?
    }

    private let reader = RESPReader()
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var nextId: UInt64 = 0
    /// A reply outstanding this long means a hung server: the connection is dropped.
    private let hungAfter: TimeAmount
    /// Receives published messages on a subscribed connection.
    private let onMessage: ((RESPValue) -> Void)?

    init(hungAfter: TimeAmount = .seconds(2), onMessage: ((RESPValue) -> Void)? = nil) {
        self.hungAfter = hungAfter
        self.onMessage = onMessage
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let requests = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 64 * requests.count)
        for request in requests {
            RESPEncoder.encode(request.arguments, into: &buffer)
            nextId &+= 1
            let id = nextId
            let task = context.eventLoop.assumeIsolated().scheduleTask(in: request.timeout) { [weak self] () -> Void in
                self?.timedOut(id, context: context)
            }
            pending.append(Pending(id: id, promise: request.promise, sentAt: .now(), timeoutTask: task))
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let replies: [RESPValue]
        do {
            replies = try reader.feed(unwrapInboundIn(data))
        } catch {
            context.close(promise: nil)
            return
        }
        for reply in replies {
            if let onMessage, case .array(let items) = reply, items.first?.string == "message" {
                onMessage(reply)
                continue
            }
            guard let first = pending.popFirst() else {
                // A reply nobody asked for: the stream is out of step; start over.
                context.close(promise: nil)
                return
            }
            first.timeoutTask?.cancel()
            first.promise?.succeed(reply)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(RedisError.connectionClosed)
        context.close(promise: nil)
    }

    private func timedOut(_ id: UInt64, context: ChannelHandlerContext) {
        guard let index = pending.firstIndex(where: { $0.id == id }) else { return }
        pending[index].promise?.fail(RedisError.timeout)
        pending[index].promise = nil
        if let oldest = pending.first, NIODeadline.now() - oldest.sentAt >= hungAfter {
            context.close(promise: nil)
        }
    }

    private func failAll(_ error: RedisError) {
        while let entry = pending.popFirst() {
            entry.timeoutTask?.cancel()
            entry.promise?.fail(error)
        }
    }
}
