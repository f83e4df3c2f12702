import Foundation
import Yams

/// Reads a `GatehouseConfiguration` from YAML text plus `GATEHOUSE_*` environment overrides.
///
/// Every key is checked: unknown keys, wrong types and invalid values throw a
/// ``ConfigurationError`` naming the key, so a typo stops startup instead of being ignored.
public enum ConfigurationLoader {
    /// Prefix of every overriding environment variable.
    public static let environmentPrefix = "GATEHOUSE_"
    /// Variables with the prefix that are not configuration keys.
    static let nonKeyVariables: Set<String> = ["GATEHOUSE_CONFIG"]

    /// Loads the file at `path`, then applies `environment`.
    public static func load(path: String, environment: [String: String]) throws -> GatehouseConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(key: path, message: "cannot read configuration file (\(error.localizedDescription))")
        }
        return try parse(yaml: text, environment: environment, source: path)
    }

    /// Parses YAML text, then applies `environment`.
    public static func parse(yaml: String, environment: [String: String] = [:], source: String = "configuration") throws -> GatehouseConfiguration {
        var root: ConfigValue
        do {
            root = try yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? .mapping([:]) : ConfigValue(Yams.compose(yaml: yaml))
        } catch let error as ConfigurationError {
            throw error
        } catch {
            // Only the first line (position and problem): the rest quotes the file, which may
            // hold secrets such as a Redis password.
            let summary = "\(error)".split(separator: "\n").first.map(String.init) ?? "syntax error"
            throw ConfigurationError(key: source, message: "not valid YAML: \(summary)")
        }
        try applyEnvironment(environment, to: &root)
        return try decode(root)
    }

    // MARK: Environment overrides

    /// The scalar keys an environment variable may set, by variable name.
    static let overridableKeys: [String: [String]] = {
        let keys = [
            "listen", "database.path", "database.busy_timeout", "redis.url", "redis.timeout", "redis.cache_ttl", "redis.connections", "redis.local_cache_size",
            "cookie.name", "cookie.secure", "cookie.domain",
            "session.lifetime", "session.idle_timeout", "session.purge_interval",
            "password.argon2.memory_kib", "password.argon2.iterations", "password.argon2.parallelism",
            "password.workers", "password.queue_limit", "login_url", "allowed_redirect_hosts",
            "trusted_proxies", "proxy.connect_timeout", "proxy.response_timeout", "proxy.idle_timeout",
            "identity_headers.user_id", "identity_headers.email",
            "log.level", "log.format",
        ]
        return Dictionary(uniqueKeysWithValues: keys.map { (variableName(for: $0), $0.split(separator: ".").map(String.init)) })
    }()

    /// `redis.url` → `GATEHOUSE_REDIS_URL`.
    public static func variableName(for key: String) -> String {
        environmentPrefix + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    static func applyEnvironment(_ environment: [String: String], to root: inout ConfigValue) throws {
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix(environmentPrefix) {
            guard !nonKeyVariables.contains(name) else { continue }
            let path: [String]
            if let known = overridableKeys[name] {
                path = known
            } else if name.hasPrefix(environmentPrefix + "UPSTREAMS_"), name.count > (environmentPrefix + "UPSTREAMS_").count {
                path = ["upstreams", String(name.dropFirst((environmentPrefix + "UPSTREAMS_").count)).lowercased()]
            } else {
                throw ConfigurationError(key: name, message: "unknown configuration variable")
            }
            let scalar = ConfigValue.scalar(value, origin: name)
            if path == ["allowed_redirect_hosts"] || path == ["trusted_proxies"] {
                let items = value.split(separator: ",").map { ConfigValue.scalar($0.trimmingCharacters(in: .whitespaces), origin: name) }
                try root.set(.sequence(items), at: path[...], origin: name)
            } else {
                try root.set(scalar, at: path[...], origin: name)
            }
        }
    }

    // MARK: Decoding

    static func decode(_ root: ConfigValue) throws -> GatehouseConfiguration {
        let top = try MappingReader(root, path: "")
        var configuration = GatehouseConfiguration()
        if let listen = try top.scalar("listen") {
            guard let address = ListenAddress(parsing: listen.text) else {
                throw listen.error("expected host:port, e.g. 127.0.0.1:8080")
            }
            configuration.listen = address
        }
        if let database = try top.mapping("database") {
            configuration.database.path = try database.string("path", default: configuration.database.path, nonEmpty: true)
            configuration.database.busyTimeout = try database.duration("busy_timeout", default: configuration.database.busyTimeout)
            try database.finish()
        }
        if let redis = try top.mapping("redis") {
            configuration.redis.url = try redis.string("url", default: "")
            if !configuration.redis.url.isEmpty, RedisEndpoint(configuration.redis.url) == nil {
                throw ConfigurationError(key: "redis.url", message: "expected redis://[user:pass@]host:port[/db] or unix:/path, or empty for SQLite only")
            }
            configuration.redis.timeout = try redis.duration("timeout", default: configuration.redis.timeout, positive: true)
            configuration.redis.cacheTTL = try redis.duration("cache_ttl", default: configuration.redis.cacheTTL, positive: true)
            configuration.redis.connections = try redis.int("connections", default: configuration.redis.connections, range: 1...64)
            configuration.redis.localCacheSize = try redis.int("local_cache_size", default: configuration.redis.localCacheSize, range: 0...10_000_000)
            try redis.finish()
        }
        if let cookie = try top.mapping("cookie") {
            configuration.cookie.name = try cookie.string("name", default: configuration.cookie.name, nonEmpty: true)
            guard CookieHeader.isToken(configuration.cookie.name) else {
                throw ConfigurationError(key: "cookie.name", message: "not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)")
            }
            configuration.cookie.secure = try cookie.bool("secure", default: configuration.cookie.secure)
            configuration.cookie.domain = try cookie.string("domain", default: "")
            guard configuration.cookie.domain.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else {
                throw ConfigurationError(key: "cookie.domain", message: "not a valid domain")
            }
            try cookie.finish()
        }
        if let session = try top.mapping("session") {
            configuration.session.lifetime = try session.duration("lifetime", default: configuration.session.lifetime, positive: true)
            configuration.session.idleTimeout = try session.duration("idle_timeout", default: configuration.session.idleTimeout)
            configuration.session.purgeInterval = try session.duration("purge_interval", default: configuration.session.purgeInterval, positive: true)
            try session.finish()
        }
        if let password = try top.mapping("password") {
            if let argon2 = try password.mapping("argon2") {
                let parallelism = try argon2.int("parallelism", default: configuration.password.argon2.parallelism, range: 1...64)
                configuration.password.argon2 = Argon2Parameters(
                    memoryKiB: try argon2.int("memory_kib", default: configuration.password.argon2.memoryKiB, range: max(8 * parallelism, 1024)...4_194_304),
                    iterations: try argon2.int("iterations", default: configuration.password.argon2.iterations, range: 1...100),
                    parallelism: parallelism
                )
                try argon2.finish()
            }
            configuration.password.workers = try password.int("workers", default: configuration.password.workers, range: 0...256)
            configuration.password.queueLimit = try password.int("queue_limit", default: configuration.password.queueLimit, range: 0...100_000)
            try password.finish()
        }
        if let loginURL = try top.scalar("login_url") {
            guard loginURL.text.hasPrefix("/") || loginURL.text.hasPrefix("https://") || loginURL.text.hasPrefix("http://") else {
                throw loginURL.error("expected a path starting with / or an http(s) URL")
            }
            configuration.loginURL = loginURL.text
        }
        configuration.allowedRedirectHosts = try top.stringList("allowed_redirect_hosts").map { $0.lowercased() }
        configuration.trustedProxies = try top.list("trusted_proxies").map { item in
            guard let cidr = CIDR(item.text) else { throw item.error("expected an IP address or CIDR, e.g. 10.0.0.0/8") }
            return cidr
        }
        if let proxy = try top.mapping("proxy") {
            configuration.proxy.connectTimeout = try proxy.duration("connect_timeout", default: configuration.proxy.connectTimeout, positive: true)
            configuration.proxy.responseTimeout = try proxy.duration("response_timeout", default: configuration.proxy.responseTimeout, positive: true)
            configuration.proxy.idleTimeout = try proxy.duration("idle_timeout", default: configuration.proxy.idleTimeout, positive: true)
            try proxy.finish()
        }
        if let identity = try top.mapping("identity_headers") {
            for (key, path) in [("user_id", \IdentityHeaderNames.userId), ("email", \IdentityHeaderNames.email)] {
                let name = try identity.string(key, default: configuration.identityHeaders[keyPath: path], nonEmpty: true)
                guard CookieHeader.isToken(name) else {
                    throw ConfigurationError(key: "identity_headers.\(key)", message: "not a valid header name")
                }
                configuration.identityHeaders[keyPath: path] = name
            }
            try identity.finish()
        }
        if let upstreams = try top.mapping("upstreams") {
            for name in upstreams.keys {
                let url = try upstreams.string(name, default: "", nonEmpty: true)
                guard let parsed = URLComponents(string: url), parsed.scheme == "http" || parsed.scheme == "https",
                    parsed.host?.isEmpty == false
                else {
                    throw ConfigurationError(key: "upstreams.\(name)", message: "expected an http:// or https:// URL")
                }
                configuration.upstreams[name] = url
            }
        }
        configuration.routes = try top.list("routes").enumerated().map { index, item in
            let route = try MappingReader(item.value, path: "routes[\(index)]")
            let prefix = try route.string("prefix", default: "", nonEmpty: true)
            guard prefix.hasPrefix("/") else {
                throw ConfigurationError(key: "routes[\(index)].prefix", message: "must start with /")
            }
            let upstream = try route.string("upstream", default: "", nonEmpty: true)
            guard configuration.upstreams[upstream] != nil else {
                throw ConfigurationError(key: "routes[\(index)].upstream", message: "no upstream named \"\(upstream)\" in upstreams")
            }
            let authText = try route.string("auth", default: RouteAuth.required.rawValue)
            guard let auth = RouteAuth(rawValue: authText) else {
                throw ConfigurationError(key: "routes[\(index)].auth", message: "expected none or required")
            }
            let host = try route.string("host", default: "")
            let stripPrefix = try route.bool("strip_prefix", default: false)
            try route.finish()
            return RouteConfiguration(prefix: prefix, host: host.isEmpty ? nil : host.lowercased(), upstream: upstream, auth: auth, stripPrefix: stripPrefix)
        }
        if let log = try top.mapping("log") {
            configuration.log.level = try log.string("level", default: configuration.log.level)
            guard LogConfiguration.levels.contains(configuration.log.level) else {
                throw ConfigurationError(key: "log.level", message: "expected one of \(LogConfiguration.levels.joined(separator: ", "))")
            }
            let format = try log.string("format", default: configuration.log.format.rawValue)
            guard let parsed = LogFormat(rawValue: format) else {
                throw ConfigurationError(key: "log.format", message: "expected text or json")
            }
            configuration.log.format = parsed
            try log.finish()
        }
        try top.finish()
        return configuration
    }

}

extension LogConfiguration {
    /// The accepted log levels, lowest first.
    public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
}

/// A YAML document reduced to what configuration needs, each scalar remembering where it came from.
indirect enum ConfigValue {
    case null
    case scalar(String, origin: String?)
    case mapping([String: ConfigValue])
    case sequence([ConfigValue])

    init(_ node: Node?) throws {
        guard let node else {
            self = .null
            return
        }
        switch node {
        case .scalar(let scalar):
            let isNull = scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
            self = isNull ? .null : .scalar(scalar.string, origin: nil)
        case .mapping(let mapping):
            var entries: [String: ConfigValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw ConfigurationError(key: "configuration", message: "mapping keys must be plain strings")
                }
                guard entries[keyScalar.string] == nil else {
                    throw ConfigurationError(key: keyScalar.string, message: "key appears twice")
                }
                entries[keyScalar.string] = try ConfigValue(value)
            }
            self = .mapping(entries)
        case .sequence(let sequence):
            self = .sequence(try sequence.map { try ConfigValue($0) })
        default:
            throw ConfigurationError(key: "configuration", message: "YAML aliases are not supported")
        }
    }

    /// Sets `value` at `path`, creating mappings on the way.
    mutating func set(_ value: ConfigValue, at path: ArraySlice<String>, origin: String) throws {
        guard let head = path.first else {
            self = value
            return
        }
        var entries: [String: ConfigValue]
        switch self {
        case .mapping(let existing): entries = existing
        case .null: entries = [:]
        default: throw ConfigurationError(key: origin, message: "cannot override: \(path.joined(separator: ".")) is not a mapping in the file")
        }
        var child = entries[head] ?? .null
        try child.set(value, at: path.dropFirst(), origin: origin)
        entries[head] = child
        self = .mapping(entries)
    }
}

/// A scalar read from configuration, able to describe itself in an error.
struct ConfigScalar {
    let text: String
    let key: String
    let origin: String?

    func error(_ message: String) -> ConfigurationError {
        let shown = origin.map { "\(key) (from \($0))" } ?? key
        return ConfigurationError(key: shown, message: "\(message); got \"\(text)\"")
    }
}

/// Reads one mapping's keys, tracking which were used so that unknown keys are reported.
final class MappingReader {
    let path: String
    let entries: [String: ConfigValue]
    private var used: Set<String> = []

    init(_ value: ConfigValue, path: String) throws {
        self.path = path
        switch value {
        case .mapping(let entries): self.entries = entries
        case .null: self.entries = [:]
        default: throw ConfigurationError(key: path.isEmpty ? "configuration" : path, message: "expected a mapping")
        }
    }

    var keys: [String] { entries.keys.sorted() }

    func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    func scalar(_ name: String) throws -> ConfigScalar? {
        used.insert(name)
        switch entries[name] {
        case .none, .null: return nil
        case .scalar(let text, let origin): return ConfigScalar(text: text, key: key(name), origin: origin)
        default: throw ConfigurationError(key: key(name), message: "expected a single value")
        }
    }

    func mapping(_ name: String) throws -> MappingReader? {
        used.insert(name)
        guard let value = entries[name] else { return nil }
        return try MappingReader(value, path: key(name))
    }

    func list(_ name: String) throws -> [(text: String, value: ConfigValue, error: (String) -> ConfigurationError)] {
        used.insert(name)
        switch entries[name] {
        case .none, .null: return []
        case .sequence(let items):
            return items.enumerated().map { index, item in
                let itemKey = "\(key(name))[\(index)]"
                if case .scalar(let text, let origin) = item {
                    let scalar = ConfigScalar(text: text, key: itemKey, origin: origin)
                    return (text, item, scalar.error)
                }
                return ("", item, { ConfigurationError(key: itemKey, message: $0) })
            }
        default: throw ConfigurationError(key: key(name), message: "expected a list")
        }
    }

    func stringList(_ name: String) throws -> [String] {
        try list(name).map { item in
            guard case .scalar = item.value, !item.text.isEmpty else { throw item.error("expected a non-empty string") }
            return item.text
        }
    }

    func string(_ name: String, default defaultValue: String, nonEmpty: Bool = false) throws -> String {
        guard let scalar = try scalar(name) else {
            if nonEmpty, defaultValue.isEmpty { throw ConfigurationError(key: key(name), message: "is required") }
            return defaultValue
        }
        if nonEmpty, scalar.text.isEmpty { throw scalar.error("must not be empty") }
        return scalar.text
    }

    func bool(_ name: String, default defaultValue: Bool) throws -> Bool {
        guard let scalar = try scalar(name) else { return defaultValue }
        switch scalar.text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw scalar.error("expected true or false")
        }
    }

    func int(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let scalar = try scalar(name) else { return defaultValue }
        guard let value = Int(scalar.text), range.contains(value) else {
            throw scalar.error("expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func duration(_ name: String, default defaultValue: Duration, positive: Bool = false) throws -> Duration {
        guard let scalar = try scalar(name) else { return defaultValue }
        guard let value = ConfigDuration.parse(scalar.text) else {
            throw scalar.error("expected a duration such as 50ms, 90s, 15m, 24h or 30d")
        }
        if positive, value <= .zero { throw scalar.error("must be greater than zero") }
        return value
    }

    /// Throws for the first key that nothing read.
    func finish() throws {
        if let unknown = entries.keys.sorted().first(where: { !used.contains($0) }) {
            throw ConfigurationError(key: key(unknown), message: "unknown key")
        }
    }
}
