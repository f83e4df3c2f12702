import Foundation
import Logging
import NIOCore
import NIOPosix

/// Submits mail to an SMTP server over SwiftNIO: one connection per message, greeting,
/// EHLO (HELO if refused), STARTTLS when configured, AUTH PLAIN or LOGIN, MAIL FROM, RCPT TO,
/// DATA, QUIT (RFC 5321, 3207, 4954).
///
/// Every wait is bounded (the connect timeout, then the command timeout for each reply), the
/// connection is closed however the conversation ends, and failures are ``SMTPError``s that
/// say whether to retry (``SMTPError/isTransient``). A connection lost after the data was
/// sent but before the server's 250 is reported as transient: a retry may then deliver twice,
/// which SMTP cannot rule out.
public struct SMTPClient: Sendable {
    /// Where and how to submit.
    public let configuration: SMTPConfiguration
    private let tls: SMTPTLS?
    private let group: any EventLoopGroup
    private let logger: Logger

    /// Checks the configuration and prepares TLS (loading the extra trusted certificates).
    public init(
        configuration: SMTPConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "gatehouse.smtp")
    ) throws(SMTPError) {
        guard (configuration.username == nil) == (configuration.password == nil) else {
            throw SMTPError(.invalidRequest, "SMTP username and password go together")
        }
        let heloCharacters = configuration.heloName.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-.[]:".unicodeScalars.contains($0))
        }
        guard heloCharacters, !configuration.heloName.isEmpty else {
            throw SMTPError(.invalidRequest, "the EHLO name must be a host name or an address literal")
        }
        self.configuration = configuration
        self.tls = configuration.security == .none
            ? nil : try SMTPTLS(host: configuration.host, extraTrustedCertificatesPath: configuration.extraTrustedCertificatesPath)
        self.group = group
        self.logger = logger
    }

    /// Sends `message` from its `From` address to its `To` address.
    public func send(_ message: MailMessage) async throws(SMTPError) {
        try await send(from: message.from.address, to: message.to, data: message.rendered())
    }

    /// Sends a rendered message (`data`, as ``MailMessage/rendered()`` makes it) with the
    /// envelope sender `envelopeFrom` (empty for the null sender `<>`) and one recipient.
    public func send(from envelopeFrom: String, to recipient: String, data: String) async throws(SMTPError) {
        let sender = try envelopeFrom.isEmpty ? "" : Self.envelopeAddress(envelopeFrom)
        let recipient = try Self.envelopeAddress(recipient)
        let connection = try await SMTPConnection.connect(
            host: configuration.host, port: configuration.port,
            implicitTLS: configuration.security == .tls ? tls : nil,
            connectTimeout: configuration.connectTimeout, commandTimeout: configuration.commandTimeout, group: group
        )
        do {
            // Cancelling the task closes the socket, which fails the reply being awaited.
            try await withTaskCancellationHandler {
                try await converse(on: connection, sender: sender, recipient: recipient, data: data)
            } onCancel: {
                connection.channel.close(promise: nil)
            }
        } catch {
            await connection.close()
            throw (error as? SMTPError) ?? connection.reason(for: error)
        }
        await connection.close()
    }

    private func converse(on connection: SMTPConnection, sender: String, recipient: String, data: String) async throws(SMTPError) {
        try expect(await connection.exchange(nil), "greeting", 220)
        var capabilities = try await hello(on: connection)
        if configuration.security == .starttls {
            // Never continue in plain text: a missing STARTTLS may be an attacker's doing.
            guard capabilities.offers("STARTTLS") else {
                throw SMTPError(.startTLSUnavailable, "the SMTP server does not offer STARTTLS")
            }
            try expect(await connection.exchange("STARTTLS"), "STARTTLS", 220)
            guard let tls else { throw SMTPError(.invalidRequest, "TLS is not set up") }
            try await connection.startTLS(tls)
            capabilities = try await hello(on: connection)
        }
        if let username = configuration.username, let password = configuration.password {
            try await authenticate(on: connection, capabilities: capabilities, username: username, password: password)
        }
        let eightBit = data.utf8.contains { $0 >= 0x80 } && capabilities.offers("8BITMIME")
        try expect(await connection.exchange("MAIL FROM:<\(sender)>" + (eightBit ? " BODY=8BITMIME" : "")), "MAIL FROM", 250)
        try expect(await connection.exchange("RCPT TO:<\(recipient)>"), "RCPT TO", 250, 251)
        try expect(await connection.exchange("DATA"), "DATA", 354)
        try expect(await connection.exchange(bytes: connection.channel.allocator.buffer(bytes: SMTPData.encode(data))), "the message", 250)
        logger.debug("smtp: message accepted")
        // Delivered: a failing QUIT changes nothing.
        _ = try? await connection.exchange("QUIT")
    }

    /// EHLO, or HELO (nothing offered) if the server refuses EHLO with a 5xx.
    private func hello(on connection: SMTPConnection) async throws(SMTPError) -> SMTPCapabilities {
        let reply = try await connection.exchange("EHLO \(configuration.heloName)")
        if reply.isPositive { return SMTPCapabilities(ehlo: reply) }
        guard reply.code >= 500 else { try expect(reply, "EHLO", 250); return .none }
        try expect(await connection.exchange("HELO \(configuration.heloName)"), "HELO", 250)
        return .none
    }

    /// AUTH PLAIN if offered, else AUTH LOGIN.
    private func authenticate(on connection: SMTPConnection, capabilities: SMTPCapabilities, username: String, password: String) async throws(SMTPError) {
        // Security invariant: credentials only go over TLS, checked on the channel itself.
        guard await connection.isEncrypted else {
            throw SMTPError(.insecureAuthentication, "refusing to send SMTP credentials over an unencrypted connection: use security starttls or tls")
        }
        let base64 = { (text: String) in Data(text.utf8).base64EncodedString() }
        let reply: SMTPReply
        if capabilities.authMechanisms.contains("PLAIN") {
            reply = try await connection.exchange("AUTH PLAIN " + base64("\0\(username)\0\(password)"))
        } else if capabilities.authMechanisms.contains("LOGIN") {
            try expectAuth(await connection.exchange("AUTH LOGIN"), 334)
            try expectAuth(await connection.exchange(base64(username)), 334)
            reply = try await connection.exchange(base64(password))
        } else {
            throw SMTPError(.authenticationUnavailable, "the SMTP server offers neither AUTH PLAIN nor AUTH LOGIN")
        }
        try expectAuth(reply, 235)
        logger.debug("smtp: authenticated")
    }

    /// Fails unless the reply has one of `codes`: with the reply code for a refusal (4xx,
    /// 5xx), as a protocol violation for anything else.
    private func expect(_ reply: SMTPReply, _ step: String, _ codes: Int...) throws(SMTPError) {
        guard !codes.contains(reply.code) else { return }
        guard reply.code >= 400 else {
            throw SMTPError(.protocolViolation, "unexpected SMTP reply \(reply.code) to \(step): \(reply.summary)")
        }
        throw SMTPError(.rejected, "the SMTP server refused \(step): \(reply.code) \(reply.summary)", replyCode: reply.code)
    }

    /// As `expect` for an AUTH step; the error names no credential.
    private func expectAuth(_ reply: SMTPReply, _ code: Int) throws(SMTPError) {
        guard reply.code != code else { return }
        guard reply.code >= 400 else {
            throw SMTPError(.protocolViolation, "unexpected SMTP reply \(reply.code) to AUTH: \(reply.summary)")
        }
        throw SMTPError(.authenticationFailed, "the SMTP server refused the credentials: \(reply.code) \(reply.summary)", replyCode: reply.code)
    }

    /// An envelope address, checked so that it cannot add commands or close the `<…>`.
    private static func envelopeAddress(_ address: String) throws(SMTPError) -> String {
        do {
            return try MailAddress(address: address).address
        } catch {
            throw SMTPError(.invalidRequest, "the envelope address cannot be used: \(error.message)")
        }
    }
}
