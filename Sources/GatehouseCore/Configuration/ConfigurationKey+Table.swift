extension ConfigurationKey {
    /// Every key Gatehouse reads, in the order the README and `conf/gatehouse.yaml` show them.
    public static let all: [ConfigurationKey] = [
        .scalar("listen", \.listen, .listen, "host:port or [v6]:port to serve on; port 0 picks a free port"),
        .scalar("database.path", \.database.path, .text(nonEmpty: true), "the SQLite file, the source of truth"),
        .scalar("database.busy_timeout", \.database.busyTimeout, .duration(), "how long a write waits for another process's lock"),
        .scalar(
            "redis.url", \.redis.url, .redisURL, secret: true, redact: { $0.isEmpty ? "\"\"" : RedisEndpoint($0)?.redacted ?? "***" },
            "the Redis session cache; empty runs on SQLite alone"
        ),
        .scalar("redis.timeout", \.redis.timeout, .duration(positive: true), "the most a Redis command may add to a request"),
        .scalar("redis.cache_ttl", \.redis.cacheTTL, .duration(positive: true), "the longest a session stays cached without a SQLite read"),
        .scalar("redis.connections", \.redis.connections, .integer(1...64), "Redis connections per instance, pipelined"),
        .scalar("redis.local_cache_size", \.redis.localCacheSize, .integer(0...10_000_000), "sessions kept in process for the fast path; 0 = off"),
        .scalar("redis.entry_key_file", \.redis.entryKeyFile, .text(nonEmpty: false), "the key that authenticates Redis entries (≥ 32 bytes); empty = <database.path>.redis-key, created when missing"),
        .scalar("cookie.name", \.cookie.name, .token("not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)"), "the session cookie's name"),
        .scalar("cookie.secure", \.cookie.secure, .boolean, "whether the cookie carries Secure"),
        .scalar("cookie.domain", \.cookie.domain, .domain, "the cookie's Domain attribute; empty = host-only"),
        .scalar("session.lifetime", \.session.lifetime, .duration(positive: true), "absolute session lifetime; also the cookie's Max-Age"),
        .scalar("session.idle_timeout", \.session.idleTimeout, .duration(), "a session unused this long stops validating; 0s = off"),
        .scalar("session.purge_interval", \.session.purgeInterval, .duration(positive: true), "how often expired sessions are deleted"),
        // 1024 KiB is above Argon2's own floor of 8 × parallelism for every accepted parallelism.
        .scalar("password.argon2.memory_kib", \.password.argon2.memoryKiB, .integer(1024...4_194_304), "Argon2id memory (KiB) for new hashes"),
        .scalar("password.argon2.iterations", \.password.argon2.iterations, .integer(1...100), "Argon2id passes for new hashes"),
        .scalar("password.argon2.parallelism", \.password.argon2.parallelism, .integer(1...64), "Argon2id lanes for new hashes"),
        .scalar("password.workers", \.password.workers, .integer(0...256), "hashing threads; 0 = one per core"),
        .scalar("password.queue_limit", \.password.queueLimit, .integer(0...100_000), "hashes that may wait for a thread before 503"),
        .scalar("password.max_wait", \.password.maxWait, .duration(positive: true), "a hash expected to wait longer for a thread is refused with 503 at once"),
        .scalar("login_url", \.loginURL, .loginURL, "where unauthenticated browsers are sent"),
        .list("allowed_redirect_hosts", \.allowedRedirectHosts, of: .host, "hosts that absolute rd targets may point at"),
        .list("trusted_proxies", \.trustedProxies, of: .cidr, "peers whose X-Forwarded-* and X-Original-URL are believed"),
        .scalar("public_url", \.publicURL, .publicURL, "Gatehouse's own origin: base of mailed links and of the cross-site check; empty = the request's host"),
        .list("allowed_origins", \.allowedOrigins, of: .origin, "other origins trusted for cookie-authenticated state changes"),
        .scalar("require_verified_email", \.requireVerifiedEmail, .boolean, "admit only users with a verified email to auth: required routes and /auth/verify"),
        .scalar("abuse.login_per_ip", \.abuse.loginPerIP, .rateLimit, "login attempts per client IP"),
        .scalar("abuse.login_per_account", \.abuse.loginPerAccount, .rateLimit, "login attempts per account (and per address that logged in to it before)"),
        .scalar("abuse.signup_per_ip", \.abuse.signupPerIP, .rateLimit, "signups per client IP"),
        .scalar("abuse.forgot_per_ip", \.abuse.forgotPerIP, .rateLimit, "password-reset requests per client IP"),
        .scalar("abuse.forgot_per_account", \.abuse.forgotPerAccount, .rateLimit, "password-reset requests per account"),
        .scalar("abuse.mfa_per_account", \.abuse.mfaPerAccount, .rateLimit, "second-factor attempts per account"),
        .scalar("abuse.lockout.max_failures", \.abuse.lockout.maxFailures, .integer(0...1_000_000), "failed logins within the window that lock; 0 = no lockout"),
        .scalar("abuse.lockout.window", \.abuse.lockout.window, .duration(positive: true), "how far back failed logins are counted"),
        .scalar("abuse.lockout.ban", \.abuse.lockout.ban, .duration(positive: true), "how long a lock lasts"),
        .scalar("mail.mailer", \.mail.mailer, .choice, "none, file (.eml files in mail.file_dir) or smtp"),
        .scalar("mail.from", \.mail.from, .mailbox, "the From of every message"),
        .scalar("mail.file_dir", \.mail.fileDir, .text(nonEmpty: true), "where the file mailer writes .eml files"),
        .scalar("mail.template_dir", \.mail.templateDir, .text(), "templates overriding the built-in ones (<name>.txt, <name>.html); empty = built-in"),
        .scalar("mail.smtp.host", \.mail.smtp.host, .text(), "the SMTP submission server"),
        .scalar("mail.smtp.port", \.mail.smtp.port, .integer(1...65535), "its port (587 STARTTLS, 465 TLS)"),
        .scalar("mail.smtp.security", \.mail.smtp.security, .choice, "starttls (required, never skipped), tls (implicit) or none"),
        .scalar("mail.smtp.username", \.mail.smtp.username, .text(), "the AUTH user; empty = no AUTH"),
        .scalar("mail.smtp.password_file", \.mail.smtp.passwordFile, .text(), "a file holding the AUTH password (or GATEHOUSE_MAIL_SMTP_PASSWORD)"),
        .scalar("mail.smtp.timeout", \.mail.smtp.timeout, .duration(positive: true), "the longest wait for the connection or one reply"),
        .scalar("mail.smtp.ca_file", \.mail.smtp.caFile, .text(), "a PEM file of CA certificates trusted besides the system's; empty = system roots"),
        .scalar("mfa.issuer", \.mfa.issuer, .text(nonEmpty: true), "the issuer authenticator apps show"),
        .scalar("mfa.key_file", \.mfa.keyFile, .text(), "the key encrypting TOTP secrets at rest (or GATEHOUSE_MFA_KEY); empty = <database.path>.mfa-key, created when missing"),
        .scalar("pages.product_name", \.pages.productName, .text(nonEmpty: true), "the name in every page's title and header"),
        .scalar("pages.logo_url", \.pages.logoURL, .logoURL, "a logo above each form (https URL or path); empty = the name alone"),
        .scalar("pages.accent_color", \.pages.accentColor, .hexColor, "the colour of buttons and links, #rrggbb"),
        .scalar("pages.template_dir", \.pages.templateDir, .text(), "templates overriding the built-in pages (<page>.mustache, layout.mustache, style.css); empty = built-in"),
        .scalar("proxy.connect_timeout", \.proxy.connectTimeout, .duration(positive: true), "connecting to an upstream; past it 502"),
        .scalar("proxy.response_timeout", \.proxy.responseTimeout, .duration(positive: true), "waiting for an upstream's response head; past it 504"),
        .scalar("proxy.idle_timeout", \.proxy.idleTimeout, .duration(positive: true), "no response bytes from the upstream this long closes the connection"),
        .scalar("proxy.case_insensitive_paths", \.proxy.caseInsensitivePaths, .boolean, "match route prefixes ignoring case, for upstreams that route that way (Express, IIS)"),
        .scalar("client.header_timeout", \.client.headerTimeout, .duration(positive: true), "from a request's first byte to the end of its head; past it the connection closes"),
        .scalar("client.idle_timeout", \.client.idleTimeout, .duration(positive: true), "a client connection with no request in progress this long closes"),
        .scalar("client.max_connections", \.client.maxConnections, .integer(1...1_000_000), "client connections open at once; more are closed as accepted"),
        .scalar("identity_headers.user_id", \.identityHeaders.userId, .token("not a valid header name"), "the user id header's name"),
        .scalar("identity_headers.email", \.identityHeaders.email, .token("not a valid header name"), "the email header's name"),
        upstreams,
        routes,
        .scalar("log.level", \.log.level, .logLevel, "lowest level written"),
        .scalar("log.format", \.log.format, .choice, "text or json lines"),
        .scalar("metrics.listen", \.metrics.listen, .optionalListen, "host:port of a listener for /metrics alone; empty = /metrics on the main listener"),
        .scalar("audit.retention", \.audit.retention, .duration(), "audit rows older than this are deleted in the background; 0s = keep every row"),
        .scalar("shutdown_timeout", \.shutdownTimeout, .duration(positive: true), "on SIGTERM, how long in-flight requests may take to finish"),
    ]

    /// `upstreams`: name → URL, each parsed once into an ``UpstreamTarget``.
    static let upstreams = ConfigurationKey(
        path: "upstreams", type: "mapping of name to http(s) URL", summary: "upstream services by name",
        environmentForm: .perEntry, isSecret: false,
        decode: { node, key, configuration in
            guard case .mapping(let entries) = node else { throw ConfigurationError(key: key, message: "expected a mapping") }
            for (name, value) in entries {
                // Unparsable URLs stop startup: dropping the upstream would leave its routes without a target.
                var target = try ScalarFormat.upstream.read(ConfigScalar(value, key: "\(key).\(name)", secret: false))
                target.name = name
                configuration.upstreams[name] = target
            }
        },
        render: { configuration in
            "{" + configuration.upstreams.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    )

    /// `routes`: the route table, each entry a mapping of its own fields.
    static let routes = ConfigurationKey(
        path: "routes", type: "list of {prefix, upstream, auth, host, strip_prefix, csrf}", summary: "the route table; the longest prefix wins",
        environmentForm: .none, isSecret: false,
        decode: { node, key, configuration in
            guard case .sequence(let items) = node else { throw ConfigurationError(key: key, message: "expected a list") }
            configuration.routes = try items.enumerated().map { index, item in try RouteConfiguration(item, key: "\(key)[\(index)]") }
        },
        render: { configuration in "[" + configuration.routes.map(\.yaml).joined(separator: ", ") + "]" }
    )
}

extension RouteConfiguration {
    /// Reads one entry of `routes`; whether its upstream exists is checked once all keys are read.
    init(_ node: ConfigValue, key: String) throws {
        let route = try MappingReader(node, path: key)
        let path = ScalarFormat<String>.text(nonEmpty: true).checked { $0.hasPrefix("/") ? nil : "must start with /" }
        let prefix = try route.read("prefix", path, required: true) ?? ""
        let upstream = try route.read("upstream", ScalarFormat<String>.text(nonEmpty: true), required: true) ?? ""
        let auth = try route.read("auth", ScalarFormat<RouteAuth>.choice) ?? .required
        let host = try route.read("host", ScalarFormat<String>.text()) ?? ""
        let stripPrefix = try route.read("strip_prefix", ScalarFormat<Bool>.boolean) ?? false
        let csrf = try route.read("csrf", ScalarFormat<Bool>.boolean) ?? true
        try route.finish()
        self.init(prefix: prefix, host: host.isEmpty ? nil : host.lowercased(), upstream: upstream, auth: auth, stripPrefix: stripPrefix, csrf: csrf)
    }

    /// The entry as a YAML flow mapping.
    var yaml: String {
        var fields = ["prefix: \(prefix)", "upstream: \(upstream)", "auth: \(auth.rawValue)"]
        if let host { fields.append("host: \(host)") }
        if stripPrefix { fields.append("strip_prefix: true") }
        if !csrf { fields.append("csrf: off") }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

extension ScalarFormat where Value == RateLimit? {
    /// `N/duration`, or `0` for no limit.
    static var rateLimit: ScalarFormat {
        ScalarFormat(name: "N/duration or 0", parse: { text in
            guard let limit = RateLimit.parse(text) else { throw InvalidValue(message: "expected N/duration such as 20/1m, or 0 for no limit") }
            return limit
        }, format: { $0?.description ?? "0" })
    }
}

extension ScalarFormat where Value == ListenAddress {
    /// `host:port` or `[v6]:port`.
    static var listen: ScalarFormat {
        ScalarFormat(name: "host:port", parsing: ListenAddress.init(parsing:), expected: "expected host:port, e.g. 127.0.0.1:8080")
    }
}

extension ScalarFormat where Value == ListenAddress? {
    /// `host:port`, or empty for none.
    static var optionalListen: ScalarFormat {
        ScalarFormat(name: "host:port or empty", parse: { text in
            if text.isEmpty { return nil }
            guard let address = ListenAddress(parsing: text) else { throw InvalidValue(message: "expected host:port, e.g. 127.0.0.1:9090, or empty") }
            return address
        }, format: { $0?.description ?? "\"\"" })
    }
}

extension ScalarFormat where Value == CIDR {
    /// An address or a CIDR block.
    static var cidr: ScalarFormat {
        ScalarFormat(name: "CIDR", parsing: CIDR.init, expected: "expected an IP address or CIDR, e.g. 10.0.0.0/8")
    }
}

extension ScalarFormat where Value == UpstreamTarget {
    /// An `http://` or `https://` URL with a host.
    static var upstream: ScalarFormat {
        ScalarFormat(name: "http(s) URL", parsing: UpstreamTarget.init, expected: "expected an http:// or https:// URL with a host")
    }
}

extension ScalarFormat where Value == String {
    /// A Redis URL, or empty for none.
    static var redisURL: ScalarFormat {
        ScalarFormat(name: "redis:// or unix: URL", parse: { text in
            guard text.isEmpty || RedisEndpoint(text) != nil else {
                throw InvalidValue(message: "expected redis://[user:pass@]host:port[/db] or unix:/path, or empty for SQLite only")
            }
            return text
        }, format: { $0.isEmpty ? "\"\"" : $0 })
    }

    /// An RFC 7230 token (cookie and header names).
    static func token(_ problem: String) -> ScalarFormat {
        text(nonEmpty: true).checked { CookieHeader.isToken($0) ? nil : problem }
    }

    /// An origin, `scheme://host[:port]`, in the form browsers send it.
    static var origin: ScalarFormat {
        ScalarFormat(name: "origin", parse: { text in
            guard let origin = CrossSitePolicy.origin(text) else { throw InvalidValue(message: "expected an origin such as https://app.example.com") }
            return origin
        }, format: { $0 })
    }

    /// Empty, or an http(s) URL whose origin is Gatehouse's own.
    static var publicURL: ScalarFormat {
        text().checked { url in
            url.isEmpty || CrossSitePolicy.origin(url, allowingPath: true) != nil ? nil : "expected an http(s) URL such as https://auth.example.com, or empty"
        }
    }

    /// A mailbox, `Name <address>` or `address`, with nothing that could break a header.
    static var mailbox: ScalarFormat {
        text(nonEmpty: true).checked { value in
            if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return "must be one line of text" }
            var address = Substring(value)
            if let open = value.lastIndex(of: "<") {
                guard value.hasSuffix(">") else { return "expected Name <address> or an address" }
                address = value[value.index(after: open)..<value.index(before: value.endIndex)]
            }
            let parts = address.split(separator: "@", omittingEmptySubsequences: false)
            let valid = parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && !address.contains { $0 == " " || $0 == "<" || $0 == ">" || $0 == "\"" }
            return valid ? nil : "expected an address such as Gatehouse <no-reply@example.com>"
        }
    }

    /// `#rrggbb`.
    static var hexColor: ScalarFormat {
        text(nonEmpty: true).checked { color in
            color.count == 7 && color.hasPrefix("#") && color.dropFirst().allSatisfy { $0.isASCII && $0.isHexDigit } ? nil : "expected a colour such as #2563eb"
        }
    }

    /// Empty, a path, or an https URL, with nothing that could leave an HTML attribute.
    static var logoURL: ScalarFormat {
        text().checked { url in
            if url.contains(where: { $0 == "\"" || $0 == "<" || $0 == ">" || $0 == " " || $0.isNewline }) { return "must be a URL without spaces or quotes" }
            return url.isEmpty || (url.hasPrefix("/") && !url.hasPrefix("//")) || url.hasPrefix("https://") ? nil : "expected a path starting with / or an https:// URL"
        }
    }

    /// A cookie `Domain`, or empty.
    static var domain: ScalarFormat {
        text().checked { domain in
            domain.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" } ? nil : "not a valid domain"
        }
    }

    /// A host pattern of `allowed_redirect_hosts`, lowercased.
    static var host: ScalarFormat {
        ScalarFormat(name: "host", parse: { text in
            guard !text.isEmpty else { throw InvalidValue(message: "expected a non-empty string") }
            return text.lowercased()
        }, format: { $0 })
    }

    /// A path or an absolute http(s) URL.
    static var loginURL: ScalarFormat {
        text().checked { url in
            url.hasPrefix("/") || url.hasPrefix("https://") || url.hasPrefix("http://") ? nil : "expected a path starting with / or an http(s) URL"
        }
    }

    /// One of ``LogConfiguration/levels``.
    static var logLevel: ScalarFormat {
        ScalarFormat(name: LogConfiguration.levels.joined(separator: " | "), parse: { text in
            guard LogConfiguration.levels.contains(text) else {
                throw InvalidValue(message: "expected one of \(LogConfiguration.levels.joined(separator: ", "))")
            }
            return text
        }, format: { $0 })
    }
}
