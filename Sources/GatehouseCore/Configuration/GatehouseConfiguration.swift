/// Everything Gatehouse reads from its YAML file and `GATEHOUSE_*` variables (SPEC §4).
public struct GatehouseConfiguration: Sendable, Equatable {
    /// The address `serve` listens on.
    public var listen: ListenAddress
    /// The SQLite database, the source of truth.
    public var database: DatabaseConfiguration
    /// The optional Redis session cache.
    public var redis: RedisConfiguration
    /// The session cookie's name and attributes.
    public var cookie: CookieConfiguration
    /// How long sessions live.
    public var session: SessionConfiguration
    /// Password hashing.
    public var password: PasswordConfiguration
    /// Where unauthenticated browsers are sent.
    public var loginURL: String
    /// Hosts that absolute `rd` redirect targets may point at.
    public var allowedRedirectHosts: [String]
    /// Peers whose `X-Forwarded-*` and `X-Original-URL` headers are believed.
    public var trustedProxies: [CIDR]
    /// Upstream timeouts.
    public var proxy: ProxyConfiguration
    /// Limits on client connections (slow clients, connection floods).
    public var client = ClientConfiguration()
    /// Names of the identity headers set on forwarded requests and verify answers.
    public var identityHeaders: IdentityHeaderNames
    /// Upstream services by name, each URL parsed once when the configuration is read.
    public var upstreams: [String: UpstreamTarget]
    /// The route table, in configuration order.
    public var routes: [RouteConfiguration]
    /// Log output.
    public var log: LogConfiguration
    /// Gatehouse's own origin (`https://auth.example.com`): the base of mailed links and the
    /// origin cross-site checks compare with; empty = the request's own host.
    public var publicURL = ""
    /// Origins besides Gatehouse's own trusted for cookie-authenticated state changes
    /// (`scheme://host[:port]`, lowercased, default port dropped).
    public var allowedOrigins: [String] = []
    /// Rate limits and the login lockout.
    public var abuse = AbuseConfiguration()
    /// Whether `auth: required` routes and `/auth/verify` admit only users whose email is verified.
    public var requireVerifiedEmail = false
    /// How account mail (password reset, email verification) is sent.
    public var mail = MailConfiguration()
    /// Second factors.
    public var mfa = MFAConfiguration()
    /// The pages' branding and templates.
    public var pages = PagesConfiguration()
    /// Where `/metrics` is served.
    public var metrics = MetricsConfiguration()
    /// How long SIGTERM waits for in-flight requests (and the background work) to finish.
    public var shutdownTimeout: Duration = .seconds(10)
    /// The audit log's retention.
    public var audit = AuditConfiguration()

    /// The defaults of SPEC §4, used for every key a file leaves out.
    public init(
        listen: ListenAddress = .init(host: "127.0.0.1", port: 8080),
        database: DatabaseConfiguration = .init(),
        redis: RedisConfiguration = .init(),
        cookie: CookieConfiguration = .init(),
        session: SessionConfiguration = .init(),
        password: PasswordConfiguration = .init(),
        loginURL: String = "/auth/login",
        allowedRedirectHosts: [String] = [],
        trustedProxies: [CIDR] = [],
        proxy: ProxyConfiguration = .init(),
        identityHeaders: IdentityHeaderNames = .init(),
        upstreams: [String: UpstreamTarget] = [:],
        routes: [RouteConfiguration] = [],
        log: LogConfiguration = .init()
    ) {
        self.listen = listen
        self.database = database
        self.redis = redis
        self.cookie = cookie
        self.session = session
        self.password = password
        self.loginURL = loginURL
        self.allowedRedirectHosts = allowedRedirectHosts
        self.trustedProxies = trustedProxies
        self.proxy = proxy
        self.identityHeaders = identityHeaders
        self.upstreams = upstreams
        self.routes = routes
        self.log = log
    }
}

/// A `host:port` pair to listen on.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// Host name or IP address (IPv6 without brackets).
    public var host: String
    /// TCP port; 0 picks a free one.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`; `nil` when malformed.
    public init?(parsing text: String) {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (0...65535).contains(port),
            host.allSatisfy({ !$0.isWhitespace })
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    /// `host:port`, bracketing IPv6 hosts.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// The SQLite database.
public struct DatabaseConfiguration: Sendable, Equatable {
    /// Path of the database file; its directory is created when missing.
    public var path: String
    /// How long a writer waits for another process's lock before failing.
    public var busyTimeout: Duration

    /// Creates a database configuration.
    public init(path: String = "data/gatehouse.sqlite", busyTimeout: Duration = .seconds(5)) {
        self.path = path
        self.busyTimeout = busyTimeout
    }
}

/// The Redis session cache.
public struct RedisConfiguration: Sendable, Equatable {
    /// `redis://[user:pass@]host:port/db` or `unix:/path`; empty runs on SQLite alone.
    public var url: String
    /// The most any Redis command may add to a request.
    public var timeout: Duration
    /// The longest a session stays cached without being read from SQLite again.
    public var cacheTTL: Duration
    /// Connections to Redis per instance; requests are pipelined on them.
    public var connections: Int
    /// Sessions kept in process for the fast path's session checks (all event loops
    /// together); 0 turns the in-process cache off, and verify and authenticated proxying go
    /// through the router.
    public var localCacheSize: Int
    /// The file holding the key that authenticates Redis entries; empty: `<database.path>.redis-key`,
    /// created when missing. Every instance sharing Redis must read the same key.
    public var entryKeyFile: String

    /// Creates a Redis configuration.
    public init(
        url: String = "", timeout: Duration = .milliseconds(50), cacheTTL: Duration = .seconds(600), connections: Int = 2, localCacheSize: Int = 100_000,
        entryKeyFile: String = ""
    ) {
        self.entryKeyFile = entryKeyFile
        self.url = url
        self.timeout = timeout
        self.cacheTTL = cacheTTL
        self.connections = connections
        self.localCacheSize = localCacheSize
    }

    /// The parsed URL; `nil` when Redis is off.
    public var endpoint: RedisEndpoint? { RedisEndpoint(url) }
}

/// The session cookie.
public struct CookieConfiguration: Sendable, Equatable {
    /// Cookie name.
    public var name: String
    /// Whether the cookie carries `Secure`.
    public var secure: Bool
    /// `Domain` attribute; empty for a host-only cookie.
    public var domain: String

    /// The name the cookie is set and read under: with `Secure`, host-only and `Path=/` it
    /// gets the `__Host-` prefix, so browsers refuse it from a sibling subdomain or over plain
    /// HTTP (cookie tossing cannot plant a session).
    public var effectiveName: String {
        secure && domain.isEmpty && !name.hasPrefix("__Host-") ? "__Host-" + name : name
    }

    /// Creates a cookie configuration.
    public init(name: String = "gatehouse_session", secure: Bool = true, domain: String = "") {
        self.name = name
        self.secure = secure
        self.domain = domain
    }
}

/// Session lifetimes.
public struct SessionConfiguration: Sendable, Equatable {
    /// Absolute lifetime from login; also the cookie's `Max-Age`.
    public var lifetime: Duration
    /// A session unused for this long stops validating; zero turns it off.
    public var idleTimeout: Duration
    /// How often expired sessions are purged from the database.
    public var purgeInterval: Duration

    /// Creates a session configuration.
    public init(lifetime: Duration = .seconds(86400), idleTimeout: Duration = .zero, purgeInterval: Duration = .seconds(600)) {
        self.lifetime = lifetime
        self.idleTimeout = idleTimeout
        self.purgeInterval = purgeInterval
    }
}

/// Argon2id cost parameters.
public struct Argon2Parameters: Sendable, Hashable {
    /// Memory cost in KiB.
    public var memoryKiB: Int
    /// Number of passes.
    public var iterations: Int
    /// Lanes.
    public var parallelism: Int

    /// Creates parameters; the defaults are OWASP's first Argon2id recommendation.
    public init(memoryKiB: Int = 19456, iterations: Int = 2, parallelism: Int = 1) {
        self.memoryKiB = memoryKiB
        self.iterations = iterations
        self.parallelism = parallelism
    }
}

/// Password hashing.
public struct PasswordConfiguration: Sendable, Equatable {
    /// Argon2id parameters for new hashes; older hashes are upgraded at login.
    public var argon2: Argon2Parameters
    /// Hashing threads; 0 means one per core.
    public var workers: Int
    /// Hashes allowed to wait for a worker before login and signup answer 503.
    public var queueLimit: Int
    /// The longest a hash may be expected to wait for a worker: one that would wait longer is
    /// refused with 503 at once rather than queued.
    public var maxWait: Duration

    /// Creates a password configuration.
    public init(argon2: Argon2Parameters = .init(), workers: Int = 0, queueLimit: Int = 64, maxWait: Duration = .seconds(1)) {
        self.argon2 = argon2
        self.workers = workers
        self.queueLimit = queueLimit
        self.maxWait = maxWait
    }
}

/// Upstream timeouts.
public struct ProxyConfiguration: Sendable, Equatable {
    /// Connecting to an upstream; past it the client gets 502.
    public var connectTimeout: Duration
    /// Waiting for an upstream's response head; past it the client gets 504.
    public var responseTimeout: Duration
    /// No response bytes from the upstream for this long closes the connection.
    public var idleTimeout: Duration
    /// Whether route prefixes match paths ignoring ASCII case, for upstreams that route that
    /// way (Express by default, IIS): `/ADMIN/x` must not miss an `/admin/` route.
    public var caseInsensitivePaths: Bool

    /// Creates proxy settings.
    public init(connectTimeout: Duration = .seconds(2), responseTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(60), caseInsensitivePaths: Bool = false) {
        self.caseInsensitivePaths = caseInsensitivePaths
        self.connectTimeout = connectTimeout
        self.responseTimeout = responseTimeout
        self.idleTimeout = idleTimeout
    }
}

/// Whether a route needs a session.
public enum RouteAuth: String, Sendable, Equatable, CaseIterable {
    /// Forwarded as is.
    case none
    /// Needs a valid session.
    case required
}

/// One entry of the route table.
public struct RouteConfiguration: Sendable, Equatable {
    /// Path prefix; the longest matching prefix wins.
    public var prefix: String
    /// Optional `Host` the route is limited to.
    public var host: String?
    /// Name of an entry in `upstreams`.
    public var upstream: String
    /// Whether a session is required.
    public var auth: RouteAuth
    /// Whether the prefix is removed before forwarding.
    public var stripPrefix: Bool
    /// Whether cross-site state changes are refused (`auth: required` routes; `csrf: off` for
    /// an API that is meant to be called from other sites' pages).
    public var csrf: Bool

    /// Creates a route.
    public init(prefix: String, host: String? = nil, upstream: String, auth: RouteAuth, stripPrefix: Bool = false, csrf: Bool = true) {
        self.csrf = csrf
        self.prefix = prefix
        self.host = host
        self.upstream = upstream
        self.auth = auth
        self.stripPrefix = stripPrefix
    }
}

/// Log output.
public struct LogConfiguration: Sendable, Equatable {
    /// Lowest level written: trace, debug, info, notice, warning, error, critical.
    public var level: String
    /// How each line is written.
    public var format: LogFormat

    /// Creates a log configuration.
    public init(level: String = "info", format: LogFormat = .text) {
        self.level = level
        self.format = format
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    /// `timestamp level label: message key=value ...`.
    case text
    /// One JSON object per line, with stable keys.
    case json
}

/// The identity headers Gatehouse sets (and strips from clients in every spelling).
public struct IdentityHeaderNames: Sendable, Equatable {
    /// The user id header.
    public var userId: String
    /// The email header.
    public var email: String

    /// Creates the names.
    public init(userId: String = "X-User-Id", email: String = "X-User-Email") {
        self.userId = userId
        self.email = email
    }
}

/// Limits on client connections: what a slow or greedy client may hold.
public struct ClientConfiguration: Sendable, Equatable {
    /// From a request's first byte (or the connection's start) to the end of its head.
    public var headerTimeout: Duration
    /// A connection with no request in progress this long is closed.
    public var idleTimeout: Duration
    /// Client connections open at once; those beyond are closed as they are accepted.
    public var maxConnections: Int

    /// Creates client limits.
    public init(headerTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60), maxConnections: Int = 10_000) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }
}

/// Where `GET /metrics` is served.
public struct MetricsConfiguration: Sendable, Equatable {
    /// A listener of its own (a private address, say); `nil` = the main listener.
    public var listen: ListenAddress?

    /// Creates the metrics configuration.
    public init(listen: ListenAddress? = nil) {
        self.listen = listen
    }
}

/// The audit log's retention.
public struct AuditConfiguration: Sendable, Equatable {
    /// Rows older than this are deleted in the background; `.zero` keeps every row.
    public var retention: Duration

    /// Creates the audit configuration.
    public init(retention: Duration = .zero) {
        self.retention = retention
    }
}
