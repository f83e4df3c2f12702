import Foundation
import Testing

@testable import GatehouseCore

@Suite("Configuration (SPEC §4)")
struct ConfigurationTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("the shipped reference and quick-start configurations are valid")
    func shippedConfigurations() throws {
        let reference = try ConfigurationLoader.load(path: Self.packageRoot + "/conf/gatehouse.yaml", environment: [:])
        #expect(reference == GatehouseConfiguration(upstreams: ["app": try #require(UpstreamTarget("http://127.0.0.1:3000"))], routes: [
            RouteConfiguration(prefix: "/public/", upstream: "app", auth: .none),
            RouteConfiguration(prefix: "/", upstream: "app", auth: .required),
        ]))
        let quickstart = try ConfigurationLoader.load(path: Self.packageRoot + "/conf/quickstart.yaml", environment: [:])
        #expect(quickstart.cookie.secure == false)
    }

    @Test("an empty file gives the SPEC defaults")
    func defaults() throws {
        let configuration = try ConfigurationLoader.parse(yaml: "")
        #expect(configuration.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(configuration.redis.timeout == .milliseconds(50))
        #expect(configuration.session.lifetime == .seconds(86400))
        #expect(configuration.password.argon2 == Argon2Parameters(memoryKiB: 19456, iterations: 2, parallelism: 1))
        #expect(configuration.cookie == CookieConfiguration(name: "gatehouse_session", secure: true, domain: ""))
    }

    @Test("environment variables override scalars by upper snake case path")
    func environmentOverrides() throws {
        let configuration = try ConfigurationLoader.parse(
            yaml: "redis:\n  timeout: 20ms\nupstreams:\n  app: http://127.0.0.1:1\n",
            environment: [
                "GATEHOUSE_REDIS_URL": "redis://127.0.0.1:6379/2",
                "GATEHOUSE_REDIS_TIMEOUT": "75ms",
                "GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB": "4096",
                "GATEHOUSE_COOKIE_SECURE": "false",
                "GATEHOUSE_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
                "GATEHOUSE_UPSTREAMS_APP": "http://127.0.0.1:9000",
                "GATEHOUSE_CONFIG": "ignored.yaml",
                "HOME": "/root",
            ]
        )
        #expect(configuration.redis.url == "redis://127.0.0.1:6379/2")
        #expect(configuration.redis.timeout == .milliseconds(75))
        #expect(configuration.password.argon2.memoryKiB == 4096)
        #expect(configuration.cookie.secure == false)
        #expect(configuration.trustedProxies.map(\.description) == ["10.0.0.0/8", "127.0.0.1/32"])
        #expect(configuration.upstreams["app"] == UpstreamTarget("http://127.0.0.1:9000"))
    }

    @Test(
        "invalid configurations stop startup with a message naming the key",
        arguments: [
            ("listn: 127.0.0.1:1", "listn"),
            ("mail:\n  mailer: file", "public_url"),
            ("public_url: https://auth.example.com\nmail:\n  mailer: smtp", "mail.smtp.host"),
            ("public_url: https://auth.example.com\nmail:\n  mailer: smtp\n  smtp: {host: mail.example.com, security: none, username: gatehouse}", "mail.smtp.security"),
            ("mail:\n  mailer: carrier-pigeon", "mail.mailer"),
            ("pages:\n  accent_color: blue", "pages.accent_color"),
            ("pages:\n  accent_color: '#12345'", "pages.accent_color"),
            ("pages:\n  logo_url: 'javascript:alert(1)'", "pages.logo_url"),
            ("pages:\n  logo_url: //cdn.example.com/logo.png", "pages.logo_url"),
            ("pages:\n  logo_url: 'https://x.example/a\" onerror=\"x'", "pages.logo_url"),
            ("mail:\n  from: 'Gatehouse <nobody>'", "mail.from"),
            ("mail:\n  from: \"a@b\\r\\nBcc: x@y\"", "mail.from"),
            ("mail:\n  smtp: {security: ssl}", "mail.smtp.security"),
            ("mfa:\n  issuer: ''", "mfa.issuer"),
            ("redis:\n  timout: 5s", "redis.timout"),
            ("password:\n  argon2: {memory_kib: 10, iterations: 2, parallelism: 1}", "password.argon2.memory_kib"),
            ("password:\n  argon2: {memory_kib: 19456, iterations: 0}", "password.argon2.iterations"),
            ("redis:\n  timeout: 5x", "redis.timeout"),
            ("redis:\n  timeout: 0s", "redis.timeout"),
            ("redis:\n  url: http://localhost", "redis.url"),
            ("session:\n  lifetime: forever", "session.lifetime"),
            ("cookie:\n  secure: maybe", "cookie.secure"),
            ("cookie:\n  name: 'a b'", "cookie.name"),
            ("listen: nonsense", "listen"),
            ("listen: 127.0.0.1:70000", "listen"),
            ("trusted_proxies: [10.0.0.0/33]", "trusted_proxies[0]"),
            ("login_url: javascript:alert(1)", "login_url"),
            ("upstreams:\n  app: ftp://x", "upstreams.app"),
            ("upstreams:\n  app: [http://a]", "upstreams.app"),
            ("upstreams: [http://a]", "upstreams"),
            ("routes:\n  - {prefix: /, upstream: nowhere, auth: none}", "routes[0].upstream"),
            ("upstreams: {app: 'http://a'}\nroutes:\n  - {prefix: /, upstream: app, auth: maybe}", "routes[0].auth"),
            ("upstreams: {app: 'http://a'}\nroutes:\n  - {prefix: x, upstream: app}", "routes[0].prefix"),
            ("upstreams: {app: 'http://a'}\nroutes:\n  - {prefix: /, upstream: app, colour: red}", "routes[0].colour"),
            ("log:\n  level: loud", "log.level"),
            ("database:\n  path: ''", "database.path"),
            ("database: 5", "database"),
            ("routes: notalist", "routes"),
            ("listen: [1, 2]", "listen"),
            ("{", "test.yaml"),
        ]
    )
    func invalid(yaml: String, key: String) {
        #expect {
            _ = try ConfigurationLoader.parse(yaml: yaml, source: "test.yaml")
        } throws: { error in
            (error as? ConfigurationError)?.key.hasPrefix(key) == true
        }
    }

    @Test("an upstream URL that does not parse stops startup naming the upstream, from the file or the environment")
    func invalidUpstream() {
        #expect(throws: ConfigurationError(key: "upstreams.billing", message: "expected an http:// or https:// URL with a host; got \"http://\"")) {
            _ = try ConfigurationLoader.parse(yaml: "upstreams:\n  app: http://127.0.0.1:3000\n  billing: 'http://'\n")
        }
        #expect {
            _ = try ConfigurationLoader.parse(yaml: "", environment: ["GATEHOUSE_UPSTREAMS_BILLING": "127.0.0.1:3000"])
        } throws: { error in
            (error as? ConfigurationError)?.key == "upstreams.billing (from GATEHOUSE_UPSTREAMS_BILLING)"
        }
    }

    @Test("an unknown key, at the top, in a section or in a nested section, is an error naming it")
    func unknownKeys() {
        for (yaml, key) in [("shutdown_timout: 10s", "shutdown_timout"), ("redis:\n  cache_tll: 5m", "redis.cache_tll"),
                            ("password:\n  argon2: {memory_kb: 4096}", "password.argon2.memory_kb")] {
            #expect(throws: ConfigurationError(key: key, message: "unknown key")) {
                _ = try ConfigurationLoader.parse(yaml: yaml)
            }
        }
    }

    @Test("the environment overrides a duration and a comma-separated list over the file")
    func environmentDurationAndList() throws {
        let configuration = try ConfigurationLoader.parse(
            yaml: "session:\n  idle_timeout: 5m\nallowed_redirect_hosts: [old.example.com]\n",
            environment: ["GATEHOUSE_SESSION_IDLE_TIMEOUT": "90s", "GATEHOUSE_ALLOWED_REDIRECT_HOSTS": "App.example.com, .example.org"]
        )
        #expect(configuration.session.idleTimeout == .seconds(90))
        #expect(configuration.allowedRedirectHosts == ["app.example.com", ".example.org"])
    }

    @Test("every variable name of earlier releases still sets its key, and no two keys share a variable")
    func variableNames() {
        let earlier = [
            "LISTEN", "DATABASE_PATH", "DATABASE_BUSY_TIMEOUT", "REDIS_URL", "REDIS_TIMEOUT", "REDIS_CACHE_TTL", "REDIS_CONNECTIONS",
            "REDIS_LOCAL_CACHE_SIZE", "COOKIE_NAME", "COOKIE_SECURE", "COOKIE_DOMAIN", "SESSION_LIFETIME", "SESSION_IDLE_TIMEOUT",
            "SESSION_PURGE_INTERVAL", "PASSWORD_ARGON2_MEMORY_KIB", "PASSWORD_ARGON2_ITERATIONS", "PASSWORD_ARGON2_PARALLELISM",
            "PASSWORD_WORKERS", "PASSWORD_QUEUE_LIMIT", "LOGIN_URL", "ALLOWED_REDIRECT_HOSTS", "TRUSTED_PROXIES",
            "PROXY_CONNECT_TIMEOUT", "PROXY_RESPONSE_TIMEOUT", "PROXY_IDLE_TIMEOUT", "IDENTITY_HEADERS_USER_ID",
            "IDENTITY_HEADERS_EMAIL", "LOG_LEVEL", "LOG_FORMAT",
        ].map { "GATEHOUSE_" + $0 }
        for name in earlier {
            #expect(ConfigurationLoader.keysByVariable[name] != nil, "\(name) no longer sets a key")
        }
        let variables = ConfigurationKey.all.compactMap(\.environmentVariable)
        #expect(Set(variables).count == variables.count)
    }

    @Test("check-config --print shows effective values with the Redis password redacted")
    func effectiveValues() throws {
        let configuration = try ConfigurationLoader.parse(
            yaml: "redis:\n  url: redis://:hunter2@127.0.0.1:6379/1\n",
            environment: ["GATEHOUSE_PROXY_IDLE_TIMEOUT": "90s"]
        )
        let listing = Dictionary(uniqueKeysWithValues: ConfigurationKey.all.map { ($0.path, $0.value(in: configuration)) })
        #expect(listing["redis.url"] == "redis://***@127.0.0.1:6379/1")
        #expect(listing["proxy.idle_timeout"] == "90s")
        #expect(!listing.values.contains { $0.contains("hunter2") })
    }

    @Test(
        "a Redis endpoint printed any way shows its redacted URL, never the password",
        arguments: ["redis://:hunter2@127.0.0.1:6379/1", "redis://gatehouse:hunter2@redis.internal/0", "redis://hunter2@redis.internal:6380"]
    )
    func endpointDescription(url: String) throws {
        let endpoint = try #require(RedisEndpoint(url))
        let configuration = try ConfigurationLoader.parse(yaml: "redis:\n  url: \(url)\n", environment: [:])
        let printed = [
            "\(endpoint)", String(describing: endpoint), String(reflecting: endpoint), "\([endpoint])",
            String(describing: configuration.redis.endpoint),
        ]
        for text in printed {
            #expect(!text.contains("hunter2"), "\(text.replacingOccurrences(of: "hunter2", with: "<password>"))")
        }
        #expect("\(endpoint)" == endpoint.redacted)
        #expect(endpoint.redacted.contains("***@"))
    }

    @Test("an invalid Redis URL is reported without quoting it (it may hold a password)")
    func redisURLNotQuoted() {
        #expect {
            _ = try ConfigurationLoader.parse(yaml: "", environment: ["GATEHOUSE_REDIS_URL": "redis://:hunter2@/x"])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.key == "redis.url (from GATEHOUSE_REDIS_URL)" && !error.description.contains("hunter2")
        }
    }

    @Test("an unknown or invalid GATEHOUSE_ variable stops startup naming the variable")
    func invalidEnvironment() {
        #expect(throws: ConfigurationError(key: "GATEHOUSE_REDIS_ULR", message: "unknown configuration variable")) {
            _ = try ConfigurationLoader.parse(yaml: "", environment: ["GATEHOUSE_REDIS_ULR": "redis://x:1"])
        }
        #expect {
            _ = try ConfigurationLoader.parse(yaml: "", environment: ["GATEHOUSE_SESSION_LIFETIME": "1 week"])
        } throws: { error in
            (error as? ConfigurationError)?.key == "session.lifetime (from GATEHOUSE_SESSION_LIFETIME)"
        }
    }

    @Test("a YAML syntax error names the position but never quotes the file (it may hold secrets)")
    func yamlErrorsHideSecrets() {
        #expect {
            _ = try ConfigurationLoader.parse(yaml: "redis:\n  url: \"redis://:hunter2-secret@127.0.0.1:6379\n  timeout: [\n", source: "test.yaml")
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.key == "test.yaml" && !error.description.contains("hunter2") && !error.description.contains("\n")
        }
    }

    @Test("a missing file is an error naming the file")
    func missingFile() {
        #expect {
            _ = try ConfigurationLoader.load(path: "/nonexistent/gatehouse.yaml", environment: [:])
        } throws: { error in
            (error as? ConfigurationError)?.key == "/nonexistent/gatehouse.yaml"
        }
    }

    @Test(
        "durations",
        arguments: [
            ("50ms", Duration.milliseconds(50)), ("90s", .seconds(90)), ("15m", .seconds(900)), ("24h", .seconds(86400)),
            ("30d", .seconds(2_592_000)), ("0", .zero), ("0s", .zero),
        ]
    )
    func durations(text: String, expected: Duration) {
        #expect(ConfigDuration.parse(text) == expected)
    }

    @Test("malformed durations are rejected", arguments: ["", "5", "-5s", "5 s", "1.5h", "5w", "s", "99999999999999999s"])
    func badDurations(text: String) {
        #expect(ConfigDuration.parse(text) == nil)
    }

    @Test("listen addresses", arguments: [("127.0.0.1:8080", "127.0.0.1", 8080), ("[::1]:9", "::1", 9), (":80", "0.0.0.0", 80)])
    func listen(text: String, host: String, port: Int) {
        #expect(ListenAddress(parsing: text) == ListenAddress(host: host, port: port))
    }
}
