import Foundation
import GatehouseTestSupport
import Testing

@testable import GatehouseStore

/// A client for `server`; it trusts the server's self-signed certificate unless `trusting` is false.
private func client(
    for server: SMTPServer, security: SMTPSecurity, host: String = "127.0.0.1", username: String? = nil, password: String? = nil,
    trusting: Bool = true
) throws -> SMTPClient {
    try SMTPClient(configuration: SMTPConfiguration(
        host: host, port: server.port, security: security, username: username, password: password,
        // Generous: the suite runs in parallel on a loaded machine.
        connectTimeout: .seconds(20), commandTimeout: .seconds(30),
        extraTrustedCertificatesPath: trusting ? server.certificatePath : nil
    ))
}

/// A small message, as the outbox would send it.
private func notice() throws -> MailMessage {
    try MailMessage(from: MailAddress(parsing: "Gatehouse <no-reply@localhost>"), to: "user@example.com", subject: "Notice", text: "Hello")
}

/// Runs `body` and returns the ``SMTPError`` it throws (nil if it throws none or another error).
private func smtpError(_ body: () async throws -> Void) async -> SMTPError? {
    do {
        try await body()
        return nil
    } catch {
        return error as? SMTPError
    }
}

/// A received message as Python's `email` package (an independent MIME parser) reads it.
private struct ParsedMail: Decodable {
    struct Part: Decodable {
        let type: String
        let encoding: String
        let content: String
    }
    let subject: String
    let fromName: String
    let fromAddress: String
    let to: String
    let messageID: String
    let date: Double
    let mimeVersion: String
    let contentType: String
    let parts: [Part]
    let longestLine: Int
    let bareLineBreak: Bool
    let defects: [String]

    init(_ mail: ReceivedMail) async throws {
        let json = try await runPython(
            """
            import email, json, sys
            from email import policy
            from email.utils import parsedate_to_datetime
            raw = open(sys.argv[1], "rb").read()
            message = email.message_from_bytes(raw, policy=policy.default)
            parts = list(message.iter_parts()) if message.is_multipart() else [message]
            sender = message["from"].addresses[0]
            print(json.dumps({
                "subject": str(message["subject"]), "fromName": sender.display_name, "fromAddress": sender.addr_spec,
                "to": str(message["to"]), "messageID": str(message["message-id"]),
                "date": parsedate_to_datetime(message["date"]).timestamp(), "mimeVersion": str(message["mime-version"]),
                "contentType": message.get_content_type(),
                "parts": [{"type": p.get_content_type(), "encoding": str(p["content-transfer-encoding"]),
                           "content": p.get_content().replace("\\r\\n", "\\n")} for p in parts],
                "longestLine": max(len(line) for line in raw.split(b"\\r\\n")),
                "bareLineBreak": b"\\n" in raw.replace(b"\\r\\n", b"") or b"\\r" in raw.replace(b"\\r\\n", b""),
                "defects": [repr(d) for d in message.defects] + [repr(d) for p in parts for d in p.defects],
            }))
            """,
            arguments: [mail.path]
        )
        self = try JSONDecoder().decode(ParsedMail.self, from: Data(json.utf8))
    }
}

@Suite("SMTP client against a real SMTP server (aiosmtpd)")
struct SMTPClientTests {
    @Test("plain delivery: headers, both MIME parts and the envelope arrive as sent; dot lines and long lines survive")
    func plainDelivery() async throws {
        let server = try await SMTPServer()
        defer { server.shutdown() }
        let longLine = String(repeating: "Lorem ipsum dolor sit amet, ", count: 12) + "fin."
        let text = "Bonjour Zoë,\n.a line that starts with a dot\n..two dots\n.\n\(longLine)\nÜnïcødé ✓ 🔐\nlast line"
        let html = "<p>Bonjour Zoë</p>\n.<b>dot</b>\n<p>\(longLine)</p>"
        let message = try MailMessage(
            from: MailAddress(address: "no-reply@localhost", displayName: "Gâtehouse"), to: "zoe@example.com",
            subject: "Réinitialisez votre mot de passe ✓", text: text, html: html, date: Date(timeIntervalSince1970: 1_782_000_000)
        )
        try await client(for: server, security: .none).send(message)

        let received = try await server.waitForMessages(count: 1)
        #expect(received.count == 1)
        #expect(received[0].from == "no-reply@localhost")
        #expect(received[0].recipients == ["zoe@example.com"])
        let parsed = try await ParsedMail(received[0])
        #expect(parsed.defects == [])
        #expect(parsed.subject == "Réinitialisez votre mot de passe ✓")
        #expect(parsed.fromName == "Gâtehouse")
        #expect(parsed.fromAddress == "no-reply@localhost")
        #expect(parsed.to == "zoe@example.com")
        #expect(parsed.messageID == message.messageID)
        #expect(parsed.date == 1_782_000_000)
        #expect(parsed.mimeVersion == "1.0")
        #expect(parsed.contentType == "multipart/alternative")
        #expect(parsed.parts.map(\.type) == ["text/plain", "text/html"])
        #expect(parsed.parts.map(\.encoding) == ["quoted-printable", "quoted-printable"])
        #expect(parsed.parts.first?.content == text)
        #expect(parsed.parts.last?.content == html)
        #expect(parsed.longestLine <= 78)
        #expect(!parsed.bareLineBreak)
        #expect(received[0].text == message.rendered())
    }

    @Test("STARTTLS delivery to a server that requires it, trusting its self-signed certificate")
    func startTLSDelivery() async throws {
        let server = try await SMTPServer(security: .starttls)
        defer { server.shutdown() }
        try await client(for: server, security: .starttls).send(notice())
        let received = try await server.waitForMessages(count: 1)
        #expect(try await ParsedMail(received[0]).subject == "Notice")
    }

    @Test("a server that refuses EHLO gets HELO and the mail")
    func heloFallback() async throws {
        let server = try await SMTPServer(refuseEHLO: true)
        defer { server.shutdown() }
        try await client(for: server, security: .none).send(notice())
        #expect(try await server.waitForMessages(count: 1).count == 1)
    }

    @Test("implicit TLS delivery, the certificate checked against the host name")
    func implicitTLSDelivery() async throws {
        let server = try await SMTPServer(security: .tls)
        defer { server.shutdown() }
        try await client(for: server, security: .tls, host: "localhost").send(notice())
        let received = try await server.waitForMessages(count: 1)
        #expect(received[0].recipients == ["user@example.com"])
    }

    @Test("a certificate the client does not trust fails the TLS handshake: transient, nothing delivered")
    func untrustedCertificate() async throws {
        let server = try await SMTPServer(security: .tls)
        defer { server.shutdown() }
        let smtp = try client(for: server, security: .tls, trusting: false)
        let error = await smtpError { try await smtp.send(notice()) }
        #expect(error?.code == .tlsFailed)
        #expect(error?.isTransient == true)
        #expect(try server.messages().isEmpty)
    }

    @Test("AUTH PLAIN is preferred when offered, and the server accepts the credentials")
    func authPlain() async throws {
        let server = try await SMTPServer(security: .starttls, username: "mailer", password: "s3cret-pässword")
        defer { server.shutdown() }
        try await client(for: server, security: .starttls, username: "mailer", password: "s3cret-pässword").send(notice())
        let received = try await server.waitForMessages(count: 1)
        #expect(received[0].envelope.login == "mailer")
        #expect(received[0].envelope.mechanism == "PLAIN")
    }

    @Test("AUTH LOGIN when it is the only mechanism offered")
    func authLogin() async throws {
        let server = try await SMTPServer(security: .tls, username: "mailer", password: "s3cret", authMechanisms: ["LOGIN"])
        defer { server.shutdown() }
        try await client(for: server, security: .tls, username: "mailer", password: "s3cret").send(notice())
        let received = try await server.waitForMessages(count: 1)
        #expect(received[0].envelope.login == "mailer")
        #expect(received[0].envelope.mechanism == "LOGIN")
    }

    @Test("a wrong password is a permanent 535, and the error does not show the password")
    func wrongPassword() async throws {
        let server = try await SMTPServer(security: .starttls, username: "mailer", password: "s3cret")
        defer { server.shutdown() }
        let smtp = try client(for: server, security: .starttls, username: "mailer", password: "wrong-Pa55word")
        let error = try #require(await smtpError { try await smtp.send(notice()) })
        #expect(error.code == .authenticationFailed)
        #expect(error.replyCode == 535)
        #expect(!error.isTransient)
        #expect(!"\(error)".contains("wrong-Pa55word"))
        #expect(!"\(error)".contains(Data("wrong-Pa55word".utf8).base64EncodedString()))
        #expect(!"\(smtp.configuration)".contains("wrong-Pa55word"))
        #expect(try server.messages().isEmpty)
    }

    @Test("credentials are not sent over plain text, even to a server that offers AUTH there")
    func noCredentialsInPlainText() async throws {
        let server = try await SMTPServer(security: .plain, username: "mailer", password: "s3cret")
        defer { server.shutdown() }
        let smtp = try client(for: server, security: .none, username: "mailer", password: "s3cret")
        let error = await smtpError { try await smtp.send(notice()) }
        #expect(error?.code == .insecureAuthentication)
        #expect(error?.isTransient == false)
        #expect(try server.messages().isEmpty)
    }

    @Test("STARTTLS asked of a server that does not offer it is an error, not a plain-text delivery")
    func startTLSMissing() async throws {
        let server = try await SMTPServer(security: .plain)
        defer { server.shutdown() }
        let error = await smtpError { try await client(for: server, security: .starttls).send(notice()) }
        #expect(error?.code == .startTLSUnavailable)
        #expect(error?.isTransient == false)
        #expect(try server.messages().isEmpty)
    }

    @Test("a stopped server is a transient failure; once it is back the same mail goes through")
    func outageThenRedelivery() async throws {
        let server = try await SMTPServer()
        defer { server.shutdown() }
        let smtp = try client(for: server, security: .none)
        server.stop()
        let error = await smtpError { try await smtp.send(notice()) }
        #expect(error?.code == .connectionFailed)
        #expect(error?.isTransient == true)
        try await server.start()
        try await smtp.send(notice())
        #expect(try await server.waitForMessages(count: 1).count == 1)
    }

    @Test("a 4xx refusal is transient, a 5xx refusal permanent", arguments: [(451, true), (550, false)])
    func refusals(code: Int, transient: Bool) async throws {
        let server = try await SMTPServer(failWith: code)
        defer { server.shutdown() }
        let error = await smtpError { try await client(for: server, security: .none).send(notice()) }
        #expect(error?.code == .rejected)
        #expect(error?.replyCode == code)
        #expect(error?.isTransient == transient)
    }

    @Test("a server that accepts the connection but never answers ends in a transient timeout")
    func silentServer() async throws {
        let listener = try SilentListener()
        let smtp = try SMTPClient(configuration: SMTPConfiguration(
            host: "127.0.0.1", port: listener.port, security: .none, connectTimeout: .seconds(20), commandTimeout: .milliseconds(300)
        ))
        let error = await smtpError { try await smtp.send(notice()) }
        #expect(error?.code == .timeout)
        #expect(error?.isTransient == true)
        withExtendedLifetime(listener) {}
    }

    @Test(
        "bytes sent in plain text after the go-ahead to STARTTLS fail the connection (no reply injection)",
        arguments: ["250 injected\\r\\n", "250-injected"]
    )
    func startTLSInjection(injected: String) async throws {
        let port = try freePort()
        let fake = try pythonProcess(["-c", """
            import socket, sys
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", int(sys.argv[1])))
            listener.listen(8)
            def serve(connection):
                connection.sendall(b"220 fake\\r\\n")
                for line in connection.makefile("rb"):
                    command = line.strip().upper()
                    if command.startswith(b"EHLO"):
                        connection.sendall(b"250-fake\\r\\n250 STARTTLS\\r\\n")
                    elif command == b"STARTTLS":
                        connection.sendall(b"220 go ahead\\r\\n\(injected)")
                    else:
                        connection.sendall(b"250 ok\\r\\n")
            while True:
                connection, _ = listener.accept()
                try:
                    serve(connection)
                except OSError:
                    pass
                connection.close()
            """, String(port)])
        fake.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try fake.run()
        defer { fake.terminate(grace: .seconds(1)) }
        #expect(await eventually { (try? await rawSMTPGreeting(port: port)) == true })
        let smtp = try SMTPClient(configuration: SMTPConfiguration(host: "127.0.0.1", port: port, security: .starttls, commandTimeout: .seconds(30)))
        let error = await smtpError { try await smtp.send(notice()) }
        #expect(error?.code == .protocolViolation)
    }

    @Test("envelope addresses that would add SMTP commands are refused before connecting")
    func envelopeInjection() async throws {
        let server = try await SMTPServer()
        defer { server.shutdown() }
        let smtp = try client(for: server, security: .none)
        for (sender, recipient) in [("a@example.com", "b@example.com>\r\nRCPT TO:<evil@example.com"), ("a@example.com>\r\nRSET", "b@example.com"), ("a@example.com", "evil>@example.com")] {
            let error = await smtpError { try await smtp.send(from: sender, to: recipient, data: "Subject: x\r\n\r\nx\r\n") }
            #expect(error?.code == .invalidRequest)
            #expect(error?.isTransient == false)
        }
        try await smtp.send(from: "", to: "b@example.com", data: "Subject: bounce\r\n\r\nnull sender\r\n")
        let received = try await server.waitForMessages(count: 1)
        #expect(received.map(\.recipients) == [["b@example.com"]])
        #expect(received[0].from == "<>")
    }
}

@Suite("SMTP framing: DATA dot-stuffing, reply lines, EHLO capabilities")
struct SMTPFramingTests {
    @Test("DATA: line breaks made CRLF, a leading dot doubled, CRLF.CRLF at the end")
    func dotStuffing() {
        #expect(String(decoding: SMTPData.encode(".a\n..b\nc.\n.\n"), as: UTF8.self) == "..a\r\n...b\r\nc.\r\n..\r\n.\r\n")
        #expect(String(decoding: SMTPData.encode("no final break"), as: UTF8.self) == "no final break\r\n.\r\n")
        #expect(String(decoding: SMTPData.encode(""), as: UTF8.self) == ".\r\n")
    }

    @Test("reply framing: multi-line replies end at the line with a space; a changing code is an error")
    func replyFraming() throws {
        var decoder = SMTPReplyDecoder()
        #expect(try decoder.feed(Array("250-mail.example.com".utf8)) == nil)
        #expect(try decoder.feed(Array("250-AUTH PLAIN LOGIN".utf8)) == nil)
        let reply = try #require(try decoder.feed(Array("250 STARTTLS".utf8)))
        #expect(reply == SMTPReply(code: 250, lines: ["mail.example.com", "AUTH PLAIN LOGIN", "STARTTLS"]))
        let capabilities = SMTPCapabilities(ehlo: reply)
        #expect(capabilities.offers("STARTTLS"))
        #expect(capabilities.authMechanisms == ["PLAIN", "LOGIN"])
        #expect(try decoder.feed(Array("221".utf8)) == SMTPReply(code: 221, lines: [""]))
        #expect(try decoder.feed(Array("250-a".utf8)) == nil)
        #expect(throws: SMTPReplyFormatError.self) { try decoder.feed(Array("251 b".utf8)) }
        var fresh = SMTPReplyDecoder()
        #expect(throws: SMTPReplyFormatError.self) { try fresh.feed(Array("hello".utf8)) }
        #expect(SMTPCapabilities(ehlo: SMTPReply(code: 250, lines: ["x", "AUTH=LOGIN"])).authMechanisms == ["LOGIN"])
    }
}

/// Whether something on `port` accepts a connection and greets.
private func rawSMTPGreeting(port: Int) async throws -> Bool {
    try await rawHTTP(port: port, "", timeout: .seconds(1)).hasPrefix("220")
}
