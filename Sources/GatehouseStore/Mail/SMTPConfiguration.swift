import GatehouseCore

/// How the connection to the SMTP server is protected: `mail.smtp.security`'s values.
public typealias SMTPSecurity = SMTPSecurityMode

extension SMTPSecurityMode {
    /// The usual port: 25, 587 (submission) or 465 (submissions).
    public var defaultPort: Int {
        switch self {
        case .none: 25
        case .starttls: 587
        case .tls: 465
        }
    }
}

/// Where and how ``SMTPClient`` submits mail.
///
/// Its `description` never shows the password.
public struct SMTPConfiguration: Sendable, CustomStringConvertible {
    /// The server's host name or IP address; also the name its certificate must carry.
    public var host: String
    /// The server's port.
    public var port: Int
    /// Plain, STARTTLS or implicit TLS.
    public var security: SMTPSecurity
    /// The AUTH user name; with ``password``, the client authenticates (over TLS only).
    public var username: String?
    /// The AUTH password.
    public var password: String?
    /// The name the client gives in `EHLO`/`HELO`.
    public var heloName: String
    /// How long to wait for the TCP connection.
    public var connectTimeout: Duration
    /// How long to wait for each reply of the server (the TLS handshake included).
    public var commandTimeout: Duration
    /// A PEM file of certificates trusted in addition to the system's roots (a self-signed
    /// or private-CA server).
    public var extraTrustedCertificatesPath: String?

    /// Creates a configuration; `port` defaults to the usual one for `security`.
    public init(
        host: String,
        port: Int? = nil,
        security: SMTPSecurity,
        username: String? = nil,
        password: String? = nil,
        heloName: String = "localhost",
        connectTimeout: Duration = .seconds(10),
        commandTimeout: Duration = .seconds(30),
        extraTrustedCertificatesPath: String? = nil
    ) {
        self.host = host
        self.port = port ?? security.defaultPort
        self.security = security
        self.username = username
        self.password = password
        self.heloName = heloName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.extraTrustedCertificatesPath = extraTrustedCertificatesPath
    }

    /// Host, port, security and user; the password as `<redacted>`.
    public var description: String {
        let user = username.map { " user=\($0)" } ?? ""
        let password = password == nil ? "" : " password=<redacted>"
        return "SMTPConfiguration(\(host):\(port) security=\(security.rawValue)\(user)\(password))"
    }
}
