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
    /// Secrets that only the environment may carry (SPEC §4) are read where they are used.
    static let nonKeyVariables: Set<String> = ["GATEHOUSE_CONFIG", "GATEHOUSE_MAIL_SMTP_PASSWORD", "GATEHOUSE_MFA_KEY"]

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
        var root = try tree(yaml: yaml, source: source)
        try applyEnvironment(environment, to: &root)
        return try decode(root)
    }

    /// The YAML document as a tree, before the environment and the keys are applied.
    static func tree(yaml: String, source: String) throws -> ConfigValue {
        do {
            return try yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? .mapping([:]) : ConfigValue(Yams.compose(yaml: yaml))
        } catch let error as ConfigurationError {
            throw error
        } catch {
            // Only the first line (position and problem): the rest quotes the file, which may
            // hold secrets such as a Redis password.
            let summary = "\(error)".split(separator: "\n").first.map(String.init) ?? "syntax error"
            throw ConfigurationError(key: source, message: "not valid YAML: \(summary)")
        }
    }

    // MARK: Environment overrides

    /// Keys an environment variable sets, by variable name (for ``ConfigurationKey/EnvironmentForm/perEntry``, by prefix).
    static let keysByVariable: [String: ConfigurationKey] = Dictionary(
        uniqueKeysWithValues: ConfigurationKey.all.compactMap { key in key.environmentVariable.map { ($0, key) } }
    )

    /// `redis.url` → `GATEHOUSE_REDIS_URL`.
    public static func variableName(for key: String) -> String {
        environmentPrefix + key.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    static func applyEnvironment(_ environment: [String: String], to root: inout ConfigValue) throws {
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix(environmentPrefix) {
            guard !nonKeyVariables.contains(name) else { continue }
            let (key, path) = try overriddenKey(name)
            let node: ConfigValue
            switch key.environmentForm {
            case .commaSeparated:
                node = .sequence(value.split(separator: ",").map { .scalar($0.trimmingCharacters(in: .whitespaces), origin: name) })
            case .value, .perEntry, .none:
                node = .scalar(value, origin: name)
            }
            try root.set(node, at: path[...], origin: name)
        }
    }

    /// The key `variable` sets and the path in the YAML tree it replaces.
    static func overriddenKey(_ variable: String) throws -> (ConfigurationKey, [String]) {
        let path: (ConfigurationKey) -> [String] = { $0.path.split(separator: ".").map(String.init) }
        if let key = keysByVariable[variable], key.environmentForm != .perEntry {
            return (key, path(key))
        }
        for key in ConfigurationKey.all where key.environmentForm == .perEntry {
            guard let prefix = key.environmentVariable.map({ $0 + "_" }), variable.hasPrefix(prefix), variable.count > prefix.count else { continue }
            return (key, path(key) + [String(variable.dropFirst(prefix.count)).lowercased()])
        }
        throw ConfigurationError(key: variable, message: "unknown configuration variable")
    }

    // MARK: Decoding

    static func decode(_ root: ConfigValue) throws -> GatehouseConfiguration {
        var configuration = GatehouseConfiguration()
        try decodeSection(root, path: "", into: &configuration)
        for (index, route) in configuration.routes.enumerated() where configuration.upstreams[route.upstream] == nil {
            throw ConfigurationError(key: "routes[\(index)].upstream", message: "no upstream named \"\(route.upstream)\" in upstreams")
        }
        if configuration.mail.mailer != .none, configuration.publicURL.isEmpty {
            // A link built from the request's Host would let anyone who asks for a reset mail
            // choose where the victim's token is sent.
            throw ConfigurationError(key: "public_url", message: "mail.mailer is \(configuration.mail.mailer.rawValue): mailed links need Gatehouse's public URL (they are never built from a request's Host)")
        }
        if configuration.mail.mailer == .smtp, configuration.mail.smtp.host.isEmpty {
            throw ConfigurationError(key: "mail.smtp.host", message: "mail.mailer is smtp: the SMTP server's host is needed")
        }
        if configuration.mail.mailer == .smtp, configuration.mail.smtp.security == .none, !configuration.mail.smtp.username.isEmpty {
            throw ConfigurationError(key: "mail.smtp.security", message: "mail.smtp.username is set: AUTH without TLS would send the password in plain text; use starttls or tls")
        }
        return configuration
    }

    /// Reads every key of one mapping (the whole file, `redis`, `password.argon2`, ...) through
    /// its ``ConfigurationKey``; a key that no descriptor declares is an error naming it.
    static func decodeSection(_ node: ConfigValue, path: String, into configuration: inout GatehouseConfiguration) throws {
        let entries: [String: ConfigValue]
        switch node {
        case .mapping(let mapping): entries = mapping
        case .null: return
        default: throw ConfigurationError(key: path.isEmpty ? "configuration" : path, message: "expected a mapping")
        }
        for (name, value) in entries.sorted(by: { $0.key < $1.key }) {
            let keyPath = path.isEmpty ? name : "\(path).\(name)"
            if let key = ConfigurationKey.byPath[keyPath] {
                if case .null = value { continue }
                try key.decode(value, keyPath, &configuration)
            } else if ConfigurationKey.sections.contains(keyPath) {
                try decodeSection(value, path: keyPath, into: &configuration)
            } else {
                throw ConfigurationError(key: keyPath, message: "unknown key")
            }
        }
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
    let node: ConfigValue
    let key: String
    /// Whether errors leave the value out (it may hold a password).
    let secret: Bool

    init(_ node: ConfigValue, key: String, secret: Bool) {
        self.node = node
        self.key = key
        self.secret = secret
    }

    /// The text, or an error when the node is a list or a mapping.
    func text() throws -> String {
        switch node {
        case .scalar(let text, _): return text
        case .null: throw ConfigurationError(key: key, message: "expected a value")
        default: throw ConfigurationError(key: key, message: "expected a single value")
        }
    }

    func error(_ message: String) -> ConfigurationError {
        guard case .scalar(let text, let origin) = node else { return ConfigurationError(key: key, message: message) }
        let shown = origin.map { "\(key) (from \($0))" } ?? key
        return ConfigurationError(key: shown, message: secret ? message : "\(message); got \"\(text)\"")
    }
}

/// Reads the fields of one list entry (a route), tracking which were used so that unknown fields are reported.
final class MappingReader {
    let path: String
    let entries: [String: ConfigValue]
    private var used: Set<String> = []

    init(_ value: ConfigValue, path: String) throws {
        self.path = path
        switch value {
        case .mapping(let entries): self.entries = entries
        case .null: self.entries = [:]
        default: throw ConfigurationError(key: path, message: "expected a mapping")
        }
    }

    /// The field's value; `nil` when absent, or an error when `required`.
    func read<Value>(_ name: String, _ format: ScalarFormat<Value>, required: Bool = false) throws -> Value? {
        used.insert(name)
        let key = "\(path).\(name)"
        switch entries[name] {
        case .none, .null:
            if required { throw ConfigurationError(key: key, message: "is required") }
            return nil
        case .some(let node):
            return try format.read(ConfigScalar(node, key: key, secret: false))
        }
    }

    /// Throws for the first field that nothing read.
    func finish() throws {
        if let unknown = entries.keys.sorted().first(where: { !used.contains($0) }) {
            throw ConfigurationError(key: "\(path).\(unknown)", message: "unknown key")
        }
    }
}
