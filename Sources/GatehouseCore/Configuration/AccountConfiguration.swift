/// How Gatehouse sends mail (SPEC §2.4, §4 `mail`).
public struct MailConfiguration: Sendable, Equatable {
    /// Where messages go.
    public var mailer: Mailer
    /// The `From` of every message: `Name <address>` or an address.
    public var from: String
    /// The folder the `file` mailer writes `.eml` files into.
    public var fileDir: String
    /// Templates overriding the built-in ones (`<name>.txt`, `<name>.html`); empty = built-in only.
    public var templateDir: String
    /// The submission server of the `smtp` mailer.
    public var smtp: SMTPServerConfiguration

    /// Creates a mail configuration with SPEC §4's defaults.
    public init(mailer: Mailer = .none, from: String = "Gatehouse <no-reply@localhost>", fileDir: String = "data/mail", templateDir: String = "", smtp: SMTPServerConfiguration = .init()) {
        self.mailer = mailer
        self.from = from
        self.fileDir = fileDir
        self.templateDir = templateDir
        self.smtp = smtp
    }
}

/// Where queued mail is delivered.
public enum Mailer: String, Sendable, Equatable, CaseIterable {
    /// Nothing is sent (and nothing queued): mail-based features answer as usual.
    case none
    /// Each message becomes an `.eml` file in `mail.file_dir`, for development.
    case file
    /// Each message is submitted to `mail.smtp`.
    case smtp
}

/// The SMTP submission server.
public struct SMTPServerConfiguration: Sendable, Equatable {
    /// Its host name (also the name its TLS certificate must carry).
    public var host: String
    /// Its port: 587 for STARTTLS, 465 for implicit TLS, 25 for plain.
    public var port: Int
    /// How the connection is protected.
    public var security: SMTPSecurityMode
    /// The AUTH user name; empty = no AUTH.
    public var username: String
    /// A file holding the AUTH password (or `GATEHOUSE_MAIL_SMTP_PASSWORD`); never in the YAML.
    public var passwordFile: String
    /// The longest wait for a connection or one reply.
    public var timeout: Duration
    /// A PEM file of CA certificates trusted besides the system's (a private CA); empty = system only.
    public var caFile: String

    /// Creates a server configuration with SPEC §4's defaults.
    public init(host: String = "", port: Int = 587, security: SMTPSecurityMode = .starttls, username: String = "", passwordFile: String = "", timeout: Duration = .seconds(10), caFile: String = "") {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.passwordFile = passwordFile
        self.timeout = timeout
        self.caFile = caFile
    }
}

/// How an SMTP connection is protected.
public enum SMTPSecurityMode: String, Sendable, Equatable, CaseIterable {
    /// Plain text (a relay on the same host only).
    case none
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    case starttls
    /// TLS from the first byte (port 465).
    case tls
}

/// Second factors (SPEC §4 `mfa`).
public struct MFAConfiguration: Sendable, Equatable {
    /// The issuer authenticator apps show beside the account.
    public var issuer: String
    /// The file holding the key that encrypts TOTP secrets at rest (or `GATEHOUSE_MFA_KEY`);
    /// empty: `<database.path>.mfa-key`, created on first use, mode 0600.
    public var keyFile: String

    /// Creates an MFA configuration with SPEC §4's defaults.
    public init(issuer: String = "Gatehouse", keyFile: String = "") {
        self.issuer = issuer
        self.keyFile = keyFile
    }
}

/// The look of the pages people see (SPEC §2.5 `pages`): name, logo, colour, templates.
public struct PagesConfiguration: Sendable, Equatable {
    /// The product name in every page's title and header.
    public var productName: String
    /// A logo shown above each form (an https URL or a path Gatehouse's host serves); empty = the name alone.
    public var logoURL: String
    /// The accent colour of buttons and links, `#rrggbb`.
    public var accentColor: String
    /// Templates overriding the built-in ones (`<page>.mustache`, `layout.mustache`, `style.css`); empty = built-in.
    public var templateDir: String

    /// Creates a pages configuration with the defaults.
    public init(productName: String = "Gatehouse", logoURL: String = "", accentColor: String = "#2563eb", templateDir: String = "") {
        self.productName = productName
        self.logoURL = logoURL
        self.accentColor = accentColor
        self.templateDir = templateDir
    }
}
