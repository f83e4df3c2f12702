import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// One step of the conversation: bytes to write (none: only wait, for the greeting) and the
/// promise that the server's reply completes.
struct SMTPExchange: Sendable {
    /// A command line with its CRLF, or the message data; nil to wait for the next reply.
    let bytes: ByteBuffer?
    /// Completed with the reply, or failed with an ``SMTPError``.
    let promise: EventLoopPromise<SMTPReply>
}

/// Pairs each command with the server's next reply, one at a time (no pipelining), within
/// the command timeout. Once anything fails — a timeout, a closed connection, a TLS or
/// framing error — the connection is closed and the first failure is kept in `failure`,
/// which outlives the pipeline: an exchange written after the close (when this handler is
/// gone) reports why the connection ended, not merely that it did. Runs on the channel's
/// event loop.
final class SMTPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = SMTPReply
    typealias OutboundIn = SMTPExchange
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var waiting: (promise: EventLoopPromise<SMTPReply>, timer: Scheduled<Void>)?
    /// Replies that came when nothing was asked: the greeting, or a server's 421 farewell.
    private var unsolicited = CircularBuffer<SMTPReply>(initialCapacity: 2)
    private let failure: NIOLockedValueBox<SMTPError?>

    init(timeout: TimeAmount, failure: NIOLockedValueBox<SMTPError?>) {
        self.timeout = timeout
        self.failure = failure
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        if let failure = failure.withLockedValue({ $0 }) {
            exchange.promise.fail(failure)
            promise?.fail(failure)
            return
        }
        guard waiting == nil else {
            let error = SMTPError(.protocolViolation, "a command was sent before the previous reply")
            exchange.promise.fail(error)
            promise?.fail(error)
            return
        }
        if let early = unsolicited.popFirst() {
            // Waiting for the greeting, or the server already said why it is leaving (4xx/5xx).
            if exchange.bytes == nil || early.code >= 400 {
                exchange.promise.succeed(early)
                promise?.succeed()
            } else {
                let error = SMTPError(.protocolViolation, "the server replied before it was asked")
                fail(error, context: context)
                exchange.promise.fail(error)
                promise?.fail(error)
            }
            return
        }
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] () -> Void in
            self?.fail(SMTPError(.timeout, "no reply from the SMTP server in time"), context: context)
        }
        waiting = (exchange.promise, timer)
        if let bytes = exchange.bytes {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: promise)
        } else {
            promise?.succeed()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let waiting else {
            unsolicited.append(reply)
            if unsolicited.count > 4 { fail(SMTPError(.protocolViolation, "the server sends replies nobody asked for"), context: context) }
            return
        }
        self.waiting = nil
        waiting.timer.cancel()
        waiting.promise.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SMTPError(.connectionClosed, "the SMTP server closed the connection"), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(SMTPError(connectionError: error), context: context)
    }

    /// Before TLS starts: nothing may have come after the server's go-ahead to STARTTLS.
    func checkNothingUnsolicited() throws(SMTPError) {
        guard unsolicited.isEmpty else { throw SMTPError(.protocolViolation, "data after the STARTTLS reply") }
    }

    private func fail(_ error: SMTPError, context: ChannelHandlerContext) {
        let first = failure.withLockedValue { failure in
            if failure == nil { failure = error }
            return failure ?? error
        }
        if let waiting {
            self.waiting = nil
            waiting.timer.cancel()
            waiting.promise.fail(first)
        }
        context.close(promise: nil)
    }
}

extension SMTPError {
    /// What an error of the channel (socket, TLS, framing) means for delivery.
    init(connectionError error: any Error) {
        switch error {
        case let error as SMTPError:
            self = error
        case let error as SMTPReplyFormatError:
            self.init(.protocolViolation, "the server's reply is not SMTP: \(error.message)")
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            self.init(.tlsFailed, "TLS with the SMTP server failed: \(error)")
        default:
            self.init(.connectionClosed, "the connection to the SMTP server broke: \(error)")
        }
    }
}
