/// Why a mail was not delivered to the SMTP server: a stable code, a message for people
/// (never holding the password), the server's reply code when it answered, and whether to
/// retry later (``isTransient``).
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, as a stable snake_case code.
    public enum Code: String, Sendable, Equatable {
        /// The TCP connection could not be made (refused, unreachable, DNS, connect timeout).
        case connectionFailed = "smtp_connection_failed"
        /// The server closed or reset the connection before the conversation ended.
        case connectionClosed = "smtp_connection_closed"
        /// No reply within the command timeout.
        case timeout = "smtp_timeout"
        /// The TLS handshake failed (also: the certificate is not trusted or not for the host).
        case tlsFailed = "smtp_tls_failed"
        /// `.starttls` was configured but the server does not offer STARTTLS.
        case startTLSUnavailable = "smtp_starttls_unavailable"
        /// Credentials are configured but the connection is not encrypted.
        case insecureAuthentication = "smtp_insecure_authentication"
        /// Credentials are configured but the server offers neither AUTH PLAIN nor LOGIN.
        case authenticationUnavailable = "smtp_auth_unavailable"
        /// The server refused the credentials.
        case authenticationFailed = "smtp_auth_failed"
        /// The server refused a command (greeting, EHLO, MAIL, RCPT, DATA).
        case rejected = "smtp_rejected"
        /// The server's bytes are not SMTP replies, or are not the reply expected.
        case protocolViolation = "smtp_protocol_violation"
        /// An envelope address or the configuration cannot be used (nothing was sent).
        case invalidRequest = "smtp_invalid_request"
    }

    /// What went wrong.
    public let code: Code
    /// For people.
    public let message: String
    /// The server's reply code, when the error is its answer.
    public let replyCode: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, replyCode: Int? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
    }

    /// Whether sending again later may succeed: network failures, timeouts, TLS handshake
    /// failures and 4xx replies are transient; 5xx replies, a server without STARTTLS or
    /// AUTH, and invalid requests are permanent. A broken or unexpected reply stream counts
    /// as a network failure.
    public var isTransient: Bool {
        if let replyCode { return (400..<500).contains(replyCode) }
        switch code {
        case .connectionFailed, .connectionClosed, .timeout, .tlsFailed, .protocolViolation: return true
        case .startTLSUnavailable, .insecureAuthentication, .authenticationUnavailable, .authenticationFailed, .rejected, .invalidRequest: return false
        }
    }

    /// `code (reply): message`.
    public var description: String {
        "\(code.rawValue)\(replyCode.map { " (\($0))" } ?? ""): \(message)"
    }
}
