/// One configuration key, declared once (SPEC §4): its dotted path, its type, its one-line
/// meaning, how it is read from YAML and from its `GATEHOUSE_*` variable, and how its
/// effective value is shown.
///
/// Defaults are not repeated here: a key's default is its value in `GatehouseConfiguration()`.
/// The loader, the environment overrides, `check-config --print` and the test that compares
/// the README and `conf/gatehouse.yaml` with the code all read ``all``.
public struct ConfigurationKey: Sendable {
    /// How an environment variable sets a key.
    public enum EnvironmentForm: Sendable, Equatable {
        /// `GATEHOUSE_<PATH>` holds the value.
        case value
        /// `GATEHOUSE_<PATH>` holds comma-separated items.
        case commaSeparated
        /// `GATEHOUSE_<PATH>_<NAME>` sets the entry `<name>` (lowercased).
        case perEntry
        /// Only the file sets it.
        case none
    }

    /// The dotted path, e.g. `redis.cache_ttl`.
    public let path: String
    /// What values it takes, e.g. `duration >0` or `integer 1–64`.
    public let type: String
    /// What it does, in one line.
    public let summary: String
    /// How the environment sets it.
    public let environmentForm: EnvironmentForm
    /// Whether its value may hold a secret: errors never quote it and listings redact it.
    public let isSecret: Bool
    /// Reads the key's YAML node (never `.null`) into the configuration.
    let decode: @Sendable (ConfigValue, String, inout GatehouseConfiguration) throws -> Void
    /// The value as written in YAML (secrets redacted).
    let render: @Sendable (GatehouseConfiguration) -> String

    /// The variable that overrides the key (for ``EnvironmentForm/perEntry``, its prefix); `nil` when none does.
    public var environmentVariable: String? {
        environmentForm == .none ? nil : ConfigurationLoader.variableName(for: path)
    }

    /// The key's effective value in `configuration`, as YAML would write it.
    public func value(in configuration: GatehouseConfiguration) -> String { render(configuration) }

    /// The value when neither the file nor the environment sets the key.
    public var defaultValue: String { render(GatehouseConfiguration()) }
}

extension ConfigurationKey {
    /// Keys by dotted path.
    static let byPath: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.path, $0) })

    /// Paths of the mappings that hold keys (`redis`, `password.argon2`, ...).
    static let sections: Set<String> = Set(all.flatMap { key in
        let parts = key.path.split(separator: ".")
        return (1..<max(parts.count, 1)).map { parts.prefix($0).joined(separator: ".") }
    })

    /// A key holding one scalar.
    static func scalar<Value>(
        _ path: String, _ field: any WritableKeyPath<GatehouseConfiguration, Value> & Sendable, _ format: ScalarFormat<Value>,
        secret: Bool = false, redact: (@Sendable (Value) -> String)? = nil, _ summary: String
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, type: format.name, summary: summary, environmentForm: .value, isSecret: secret,
            decode: { node, key, configuration in
                configuration[keyPath: field] = try format.read(ConfigScalar(node, key: key, secret: secret))
            },
            render: { configuration in (redact ?? format.format)(configuration[keyPath: field]) }
        )
    }

    /// A key holding a list of scalars; the environment gives it comma-separated.
    static func list<Value>(
        _ path: String, _ field: any WritableKeyPath<GatehouseConfiguration, [Value]> & Sendable, of format: ScalarFormat<Value>,
        _ summary: String
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, type: "list of \(format.name)", summary: summary, environmentForm: .commaSeparated, isSecret: false,
            decode: { node, key, configuration in
                guard case .sequence(let items) = node else { throw ConfigurationError(key: key, message: "expected a list") }
                configuration[keyPath: field] = try items.enumerated().map { index, item in
                    try format.read(ConfigScalar(item, key: "\(key)[\(index)]", secret: false))
                }
            },
            render: { configuration in "[" + configuration[keyPath: field].map(format.format).joined(separator: ", ") + "]" }
        )
    }
}

/// What a ``ScalarFormat`` expected and did not get.
struct InvalidValue: Error {
    let message: String
}

/// How one kind of scalar is parsed, checked and written back.
struct ScalarFormat<Value>: Sendable {
    /// Shown as a key's type.
    let name: String
    /// The value of `text`, or throws ``InvalidValue`` saying what was expected.
    let parse: @Sendable (String) throws -> Value
    /// The value as YAML writes it.
    let format: @Sendable (Value) -> String

    /// Parses a scalar, turning ``InvalidValue`` into an error naming the key.
    func read(_ scalar: ConfigScalar) throws -> Value {
        do {
            return try parse(try scalar.text())
        } catch let invalid as InvalidValue {
            throw scalar.error(invalid.message)
        }
    }

    /// The same format with a further check on the parsed value (`nil` when it passes).
    func checked(_ problem: @escaping @Sendable (Value) -> String?) -> ScalarFormat {
        let parse = self.parse
        return ScalarFormat(name: name, parse: { text in
            let value = try parse(text)
            if let message = problem(value) { throw InvalidValue(message: message) }
            return value
        }, format: format)
    }
}

extension ScalarFormat where Value: CustomStringConvertible {
    /// A format for a type whose failable initialiser parses it; `expected` is the error when it fails.
    init(name: String, parsing make: @escaping @Sendable (String) -> Value?, expected: String) {
        self.init(name: name, parse: { text in
            guard let value = make(text) else { throw InvalidValue(message: expected) }
            return value
        }, format: \.description)
    }
}

extension ScalarFormat where Value == String {
    /// Any text; `nonEmpty` refuses `""`.
    static func text(nonEmpty: Bool = false) -> ScalarFormat {
        ScalarFormat(name: nonEmpty ? "non-empty string" : "string", parse: { text in
            if nonEmpty, text.isEmpty { throw InvalidValue(message: "must not be empty") }
            return text
        }, format: { $0.isEmpty ? "\"\"" : $0 })
    }
}

extension ScalarFormat where Value == Bool {
    /// `true/false`, `yes/no`, `on/off`, `1/0`.
    static var boolean: ScalarFormat {
        ScalarFormat(name: "boolean", parse: { text in
            switch text.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw InvalidValue(message: "expected true or false")
            }
        }, format: { $0 ? "true" : "false" })
    }
}

extension ScalarFormat where Value == Int {
    /// A whole number within `range`.
    static func integer(_ range: ClosedRange<Int>) -> ScalarFormat {
        ScalarFormat(name: "integer \(range.lowerBound)–\(range.upperBound)", parse: { text in
            guard let value = Int(text), range.contains(value) else {
                throw InvalidValue(message: "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }, format: { String($0) })
    }
}

extension ScalarFormat where Value == Duration {
    /// A ``ConfigDuration``; `positive` refuses zero.
    static func duration(positive: Bool = false) -> ScalarFormat {
        ScalarFormat(name: positive ? "duration >0" : "duration", parse: { text in
            guard let value = ConfigDuration.parse(text) else {
                throw InvalidValue(message: "expected a duration such as 50ms, 90s, 15m, 24h or 30d")
            }
            if positive, value <= .zero { throw InvalidValue(message: "must be greater than zero") }
            return value
        }, format: ConfigDuration.format)
    }
}

extension ScalarFormat where Value: RawRepresentable & CaseIterable & Sendable, Value.RawValue == String {
    /// One of an enumeration's raw values.
    static var choice: ScalarFormat {
        let names = Value.allCases.map(\.rawValue)
        return ScalarFormat(name: names.joined(separator: " | "), parse: { text in
            guard let value = Value(rawValue: text) else {
                throw InvalidValue(message: "expected \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "")")
            }
            return value
        }, format: \.rawValue)
    }
}
