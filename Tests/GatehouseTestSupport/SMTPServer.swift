import Foundation

/// A real SMTP server (aiosmtpd, `Tests/python/smtp_server.py`) started by the tests on a free
/// loopback port, keeping every message it accepts in a temp directory: plain, STARTTLS
/// (required before MAIL) or implicit TLS with a self-signed certificate for `127.0.0.1` and
/// `localhost`, optionally requiring AUTH, optionally refusing every recipient and message.
/// It can be stopped (SIGKILL: an outage) and started again on the same port.
public final class SMTPServer: @unchecked Sendable {
    /// How clients reach it.
    public enum Security: String, Sendable {
        /// Plain text; with a username, AUTH is offered even so (the client must refuse).
        case plain
        /// Plain text that must be upgraded with STARTTLS before MAIL FROM.
        case starttls
        /// TLS from the first byte.
        case tls
    }

    /// The port it listens on (127.0.0.1).
    public private(set) var port: Int
    /// Plain, STARTTLS or implicit TLS.
    public let security: Security
    /// The AUTH user it accepts, if AUTH is required.
    public let username: String?
    /// That user's password.
    public let password: String?
    /// The PEM certificate it presents (self-signed, for 127.0.0.1 and localhost): what a
    /// client must trust.
    public let certificatePath: String
    /// Where its messages, certificate and log are.
    public let directory: TemporaryDirectory
    private let mailDirectory: String
    private var arguments: [String]
    private var process: Process?

    /// Starts a server and waits until its port accepts connections. `failWith` (a 4xx or
    /// 5xx code) is the answer to every RCPT and DATA; `authMechanisms` limits what AUTH offers;
    /// `refuseEHLO` makes it an old server that answers EHLO with 502 and knows only HELO.
    public init(
        security: Security = .plain, username: String? = nil, password: String? = nil, failWith: Int? = nil,
        authMechanisms: [String] = ["PLAIN", "LOGIN"], refuseEHLO: Bool = false
    ) async throws {
        self.port = try freePort()
        self.security = security
        self.username = username
        self.password = password
        self.directory = try TemporaryDirectory()
        self.certificatePath = directory.file("cert.pem")
        self.mailDirectory = directory.file("mail")
        try FileManager.default.createDirectory(atPath: mailDirectory, withIntermediateDirectories: true)
        let certificatePath = certificatePath, keyPath = directory.file("key.pem")
        try await onThread { try Self.makeCertificate(certificate: certificatePath, key: keyPath) }
        var arguments = [
            packageRoot + "/Tests/python/smtp_server.py", "--port", "PORT", "--dir", mailDirectory,
            "--security", security.rawValue, "--cert", certificatePath, "--key", directory.file("key.pem"),
            "--mechanisms", authMechanisms.joined(separator: ","),
        ]
        if let username, let password { arguments += ["--username", username, "--password", password] }
        if let failWith { arguments += ["--fail-with", String(failWith)] }
        if refuseEHLO { arguments.append("--refuse-ehlo") }
        self.arguments = arguments
        // A free port can be taken by another process before the server binds it: then once
        // more on another one.
        for attempt in 1...3 {
            if attempt > 1 { port = try freePort() }
            self.arguments = arguments.map { $0 == "PORT" ? String(port) : $0 }
            do {
                try await start()
                return
            } catch is ProcessError where attempt < 3 {
                // Exited (the port was taken) or never ready (aiosmtpd's self-check reached
                // the other listener): stopped by `start`, tried again elsewhere.
                continue
            } catch {
                shutdown()
                throw error
            }
        }
    }

    deinit { shutdown() }

    /// Starts (or restarts, after ``stop()``) the process on the same port and directory and
    /// waits until the port accepts connections.
    public func start() async throws {
        guard process?.isRunning != true else { return }
        let process = try pythonProcess(arguments)
        let log = directory.file("server.log")
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let logHandle = FileHandle(forWritingAtPath: log)
        logHandle?.seekToEndOfFile()
        process.standardOutput = logHandle
        process.standardError = logHandle
        try process.run()
        // The child has its own copy of the descriptor.
        try? logHandle?.close()
        self.process = process
        // Ready once it says so (one more `ready` line than before this start): a connection
        // alone could reach another process that took the port first.
        let readyLine = "ready \(port)\n"
        let before = readyCount(in: log, readyLine)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if readyCount(in: log, readyLine) > before { return }
            guard process.isRunning else {
                let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw ProcessError(message: "the SMTP server exited: \(output.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate(grace: .seconds(1))
        throw ProcessError(message: "the SMTP server did not listen on port \(port)")
    }

    private func readyCount(in log: String, _ line: String) -> Int {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: line).count - 1
    }

    /// SIGKILL: the server is gone at once (connections refused) until ``start()``.
    public func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Ends the process and deletes the directory; safe to call more than once.
    public func shutdown() {
        process?.terminate(grace: .seconds(2))
        directory.remove()
    }

    /// Every message accepted so far, oldest first (they survive ``stop()`` and ``start()``).
    public func messages() throws -> [ReceivedMail] {
        let names = try FileManager.default.contentsOfDirectory(atPath: mailDirectory)
        let numbers = names.filter { $0.hasSuffix(".eml") && !$0.hasPrefix(".") }.compactMap { Int($0.dropLast(4)) }.sorted()
        return try numbers.map { number in
            let envelope = try JSONDecoder().decode(
                ReceivedMail.Envelope.self, from: Data(contentsOf: URL(fileURLWithPath: "\(mailDirectory)/\(number).json"))
            )
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(mailDirectory)/\(number).eml"))
            return ReceivedMail(envelope: envelope, data: data, path: "\(mailDirectory)/\(number).eml")
        }
    }

    /// Waits until at least `count` messages arrived, at most `timeout`; returns them all.
    @discardableResult
    public func waitForMessages(count: Int, timeout: Duration = .seconds(30)) async throws -> [ReceivedMail] {
        _ = await eventually(timeout: timeout) { ((try? messages().count) ?? 0) >= count }
        let received = try messages()
        guard received.count >= count else {
            throw ProcessError(message: "\(received.count) of \(count) messages arrived at the SMTP server")
        }
        return received
    }

    /// A self-signed P-256 certificate for 127.0.0.1 and localhost, by the `openssl` command.
    private static func makeCertificate(certificate: String, key: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try findExecutable("openssl"))
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "7", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        let errors = Pipe()
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = errors
        try process.run()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ProcessError(message: "openssl failed: \(String(decoding: errorData, as: UTF8.self))")
        }
    }
}

/// A message as the SMTP server received it.
public struct ReceivedMail: Sendable {
    /// What the SMTP conversation said around the message.
    public struct Envelope: Sendable, Decodable {
        /// MAIL FROM (`<>` for the null sender).
        public let from: String
        /// RCPT TO, in order.
        public let to: [String]
        /// The AUTH user, if the client authenticated.
        public let login: String?
        /// The AUTH mechanism it used (`PLAIN`, `LOGIN`).
        public let mechanism: String?
    }

    /// MAIL FROM, RCPT TO and AUTH.
    public let envelope: Envelope
    /// The message bytes after DATA, dot-stuffing undone.
    public let data: Data
    /// The `.eml` file holding them.
    public let path: String

    /// MAIL FROM.
    public var from: String { envelope.from }
    /// RCPT TO.
    public var recipients: [String] { envelope.to }
    /// The message as text (it is 7-bit ASCII when Gatehouse rendered it).
    public var text: String { String(decoding: data, as: UTF8.self) }
}

/// A TCP listener on 127.0.0.1 that never accepts nor writes: connections complete in the
/// kernel's backlog and then hear nothing, like a hung server.
public final class SilentListener: @unchecked Sendable {
    /// Its port.
    public let port: Int
    private let descriptor: Int32

    /// Binds a free port and listens.
    public init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ProcessError(message: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && listen(descriptor, 16) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard listening else {
            close(descriptor)
            throw ProcessError(message: "cannot listen on 127.0.0.1")
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
