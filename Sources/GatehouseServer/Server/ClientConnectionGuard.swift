import GatehouseCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What slow or greedy clients may hold (`client.*`): a connection is closed when a
/// request's head takes longer than `client.header_timeout` to arrive (slowloris), when no
/// request is in progress for `client.idle_timeout`, and connections beyond
/// `client.max_connections` are closed as they are accepted. A WebSocket, once upgraded, is
/// a request in progress for as long as it lasts.
///
/// Sits first in every client pipeline, on the bytes: the head's end (CRLF CRLF) is found
/// there, so the first request of a connection is timed before Hummingbird has decided
/// whether it upgrades. ``HTTP10Framing``, above the HTTP decoder, reports each request's
/// start and each response's end.
final class ClientConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        /// Reading a head; `matched` bytes of CR LF CR LF seen at the end so far.
        case awaitingHead(matched: Int)
        /// A request is being answered (or the connection was upgraded).
        case inRequest
        /// Between requests.
        case idle
    }

    private let limits: ClientConfiguration
    private var state = State.awaitingHead(matched: 0)
    /// Bytes received since the current request's head ended, and how many of them its body
    /// took: what is left over is the start of a pipelined next request, timed as a head.
    private var bytesAfterHead = 0
    private var bodyBytes = 0
    /// Heads whose end this handler found, and heads the HTTP decoder produced: a decoded
    /// head beyond those found is a pipelined one that came with the bytes after a head.
    private var headsEnded = 0
    private var headsDecoded = 0
    /// When the connection is closed unless a request starts first; `nil` while one is in
    /// progress. Requests only move it: the timer is scheduled when none is, and when it
    /// fires early it schedules itself for the deadline, so a busy connection costs no timer
    /// per request.
    private var deadline: NIODeadline?
    private var timerScheduled = false
    private var context: ChannelHandlerContext?

    init(limits: ClientConfiguration) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm(limits.headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = state {
            state = .awaitingHead(matched: 0)
            arm(limits.headerTimeout)
        }
        let buffer = unwrapInboundIn(data)
        switch state {
        case .awaitingHead(let matchedBefore):
            let (matched, remaining) = buffer.withUnsafeReadableBytes { Self.scanForHeadEnd($0, matched: matchedBefore) }
            if matched == Self.headEnd.count {
                requestStarted()
                bytesAfterHead = remaining
            } else {
                state = .awaitingHead(matched: matched)
            }
        case .inRequest:
            bytesAfterHead += buffer.readableBytes
        case .idle:
            break
        }
        context.fireChannelRead(data)
    }

    /// A request's head has ended.
    private func requestStarted() {
        headsEnded = max(headsEnded + 1, headsDecoded)
        state = .inRequest
        bytesAfterHead = 0
        bodyBytes = 0
        deadline = nil
    }

    static let headEnd: [UInt8] = Array("\r\n\r\n".utf8)

    /// How much of CR LF CR LF has been seen once `bytes` follow `matched` bytes of it, and
    /// how many bytes come after it when it is complete.
    static func scanForHeadEnd(_ bytes: UnsafeRawBufferPointer, matched: Int) -> (matched: Int, remaining: Int) {
        var matched = matched
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == headEnd[matched] {
                matched += 1
                if matched == 4 { return (4, bytes.count - index) }
            } else {
                matched = byte == 0x0D ? 1 : 0
            }
        }
        return (matched, 0)
    }

    /// The HTTP decoder has produced a head: the one this handler saw end (nothing to do), or
    /// a pipelined one whose bytes came during the previous request.
    func headDecoded() {
        headsDecoded += 1
        if headsDecoded > headsEnded {
            // Pipelined: its bytes were counted after the previous head; they are this one's.
            requestStarted()
        } else {
            bodyBytes = 0
        }
    }

    /// `count` bytes of the current request's body have been decoded.
    func bodyReceived(_ count: Int) {
        bodyBytes += count
    }

    /// A response has been written in full; the connection stays open for the next request,
    /// whose head (when part of it has arrived already) is timed as any head.
    func responseEnded() {
        if bytesAfterHead > bodyBytes {
            state = .awaitingHead(matched: 0)
            arm(limits.headerTimeout)
        } else {
            state = .idle
            arm(limits.idleTimeout)
        }
    }

    private func arm(_ timeout: Duration) {
        let due = NIODeadline.now() + .nanoseconds(Int64(timeout.milliseconds) * 1_000_000)
        deadline = due
        if !timerScheduled { schedule(at: due) }
    }

    private func schedule(at due: NIODeadline) {
        guard let context else { return }
        timerScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(deadline: due) { loopBound.value.check() }
    }

    private func check() {
        timerScheduled = false
        guard let deadline, context != nil else { return }
        if deadline <= .now() {
            context?.close(promise: nil)
        } else {
            schedule(at: deadline)
        }
    }
}

/// Counts open client connections against `client.max_connections`.
final class ClientConnectionCount: Sendable {
    private let open = NIOLockedValueBox(0)
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a place for a new connection; `false` when none is left.
    func admit() -> Bool {
        open.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() {
        open.withLockedValue { $0 -= 1 }
    }
}

/// A client connection too many (`client.max_connections`).
struct ConnectionLimitReached: Error {}

/// Hummingbird's child channel with ``ClientConnectionGuard`` in front and the connection
/// count applied.
struct GuardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    let limits: ClientConfiguration
    let count: ClientConnectionCount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard count.admit() else {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ConnectionLimitReached())
        }
        channel.closeFuture.whenComplete { [count] _ in count.release() }
        do {
            try channel.pipeline.syncOperations.addHandler(ClientConnectionGuard(limits: limits), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
