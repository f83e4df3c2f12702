import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// One TCP connection to an SMTP server: the channel with its reply decoder and exchange
/// handler, optionally TLS from the start or after STARTTLS.
struct SMTPConnection: Sendable {
    /// The socket.
    let channel: any Channel
    /// The first failure of the connection, recorded by its handler.
    let failure: NIOLockedValueBox<SMTPError?>

    /// Connects within `connectTimeout`; with `implicitTLS`, TLS wraps the connection from the
    /// first byte and its handshake is bounded by the wait for the greeting.
    static func connect(
        host: String, port: Int, implicitTLS: SMTPTLS?, connectTimeout: Duration, commandTimeout: Duration, group: any EventLoopGroup
    ) async throws(SMTPError) -> SMTPConnection {
        let replyTimeout = TimeAmount(commandTimeout)
        let failure = NIOLockedValueBox<SMTPError?>(nil)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let implicitTLS { try pipeline.addHandler(implicitTLS.makeHandler()) }
                    try pipeline.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    try pipeline.addHandler(SMTPConnectionHandler(timeout: replyTimeout, failure: failure))
                }
            }
        do {
            return SMTPConnection(channel: try await bootstrap.connect(host: host, port: port).get(), failure: failure)
        } catch {
            throw SMTPError(.connectionFailed, "cannot connect to the SMTP server at \(host):\(port): \(error)")
        }
    }

    /// Writes `line` and CRLF (nothing when nil) and awaits the next reply.
    func exchange(_ line: String?) async throws(SMTPError) -> SMTPReply {
        try await exchange(bytes: line.map { channel.allocator.buffer(string: $0 + "\r\n") })
    }

    /// Writes `bytes` (nothing when nil) and awaits the next reply.
    func exchange(bytes: ByteBuffer?) async throws(SMTPError) -> SMTPReply {
        let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
        // If the write never reaches the handler (the channel is gone), fail the reply too;
        // a promise already completed ignores this.
        let failure = self.failure
        channel.writeAndFlush(SMTPExchange(bytes: bytes, promise: promise)).whenFailure { error in
            promise.fail(failure.withLockedValue { $0 } ?? SMTPError(connectionError: error))
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            throw reason(for: error)
        }
    }

    /// Puts TLS under the conversation after the server's `220` to STARTTLS. The plain-text
    /// reply decoder is replaced by a fresh one, so that bytes that came in plain text after
    /// the go-ahead fail the connection instead of being read as replies over TLS.
    func startTLS(_ tls: SMTPTLS) async throws(SMTPError) {
        let channel = self.channel
        do {
            try await channel.eventLoop.submit {
                let pipeline = channel.pipeline.syncOperations
                let handler = try pipeline.handler(type: SMTPConnectionHandler.self)
                try handler.checkNothingUnsolicited()
                let plainDecoder = try pipeline.handler(type: ByteToMessageHandler<SMTPReplyDecoder>.self)
                pipeline.removeHandler(plainDecoder, promise: nil)
                try pipeline.addHandler(ByteToMessageHandler(SMTPReplyDecoder()), position: .before(handler))
                try pipeline.addHandler(tls.makeHandler(), position: .first)
            }.get()
        } catch {
            throw reason(for: error)
        }
    }

    /// Why the connection failed: its first recorded failure, else what `error` means.
    func reason(for error: any Error) -> SMTPError {
        failure.withLockedValue { $0 } ?? SMTPError(connectionError: error)
    }

    /// Whether TLS protects the connection now.
    var isEncrypted: Bool {
        get async {
            let channel = self.channel
            let found = try? await channel.eventLoop.submit {
                (try? channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)) != nil
            }.get()
            return found ?? false
        }
    }

    /// Closes the socket; never fails.
    func close() async {
        try? await channel.close()
    }
}

/// The client side of TLS: the context (trust roots, minimum version) and the name the
/// server's certificate must carry.
struct SMTPTLS: Sendable {
    /// Shared by every connection.
    let context: NIOSSLContext
    /// For SNI and the certificate check; nil for an IP address, which NIOSSL checks
    /// against the certificate's IP entries instead.
    let serverHostname: String?

    /// The system's trust roots plus those in `extraTrustedCertificatesPath`; TLS 1.2 or later.
    init(host: String, extraTrustedCertificatesPath: String?) throws(SMTPError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        do {
            if let path = extraTrustedCertificatesPath {
                configuration.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(path))]
            }
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw SMTPError(.invalidRequest, "cannot set up TLS for the SMTP client: \(error)")
        }
        let isIPAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        serverHostname = isIPAddress ? nil : host
    }

    /// A new handler for one connection.
    func makeHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
    }
}
