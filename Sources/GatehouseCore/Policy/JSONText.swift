/// Writes small JSON objects with a fixed key order, so responses are byte-for-byte stable.
public struct JSONText: Sendable {
    private var text = "{"
    private var first = true

    /// An empty object.
    public init() {}

    /// Adds a string member.
    public mutating func add(_ key: String, _ value: String) {
        member(key)
        Self.appendQuoted(value, to: &text)
    }

    /// Adds a boolean member.
    public mutating func add(_ key: String, _ value: Bool) {
        member(key)
        text += value ? "true" : "false"
    }

    /// Adds a number member.
    public mutating func add(_ key: String, _ value: Int) {
        member(key)
        text += String(value)
    }

    /// Adds a nested object member.
    public mutating func add(_ key: String, _ value: JSONText) {
        member(key)
        text += value.string
    }

    /// Adds an object of string members, keys sorted.
    public mutating func add(_ key: String, _ value: [String: String]) {
        var object = JSONText()
        for (name, entry) in value.sorted(by: { $0.key < $1.key }) { object.add(name, entry) }
        add(key, object)
    }

    /// Adds an array of objects.
    public mutating func add(_ key: String, _ values: [JSONText]) {
        member(key)
        text += "[" + values.map(\.string).joined(separator: ",") + "]"
    }

    /// Adds an array of strings.
    public mutating func add(_ key: String, _ values: [String]) {
        member(key)
        text += "["
        for (index, value) in values.enumerated() {
            if index > 0 { text += "," }
            Self.appendQuoted(value, to: &text)
        }
        text += "]"
    }

    /// The finished object.
    public var string: String { text + "}" }

    private mutating func member(_ key: String) {
        if !first { text += "," }
        first = false
        Self.appendQuoted(key, to: &text)
        text += ":"
    }

    static func appendQuoted(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case "<": text += "\\u003c"
            case ">": text += "\\u003e"
            case "&": text += "\\u0026"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        text += "\""
    }
}

extension User {
    /// The API's user object (SPEC §2).
    public var json: JSONText {
        var object = JSONText()
        object.add("id", id)
        object.add("email", email)
        object.add("created_at", Timestamp.rfc3339(createdAt))
        object.add("email_verified", emailVerified)
        object.add("mfa_enabled", mfaEnabled)
        return object
    }
}

extension AuthError {
    /// The API's error object (SPEC §2).
    public var json: JSONText {
        var object = JSONText()
        object.add("error", code)
        object.add("message", message)
        if !fields.isEmpty { object.add("fields", fields) }
        return object
    }
}
