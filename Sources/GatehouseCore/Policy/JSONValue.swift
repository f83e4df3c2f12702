/// A JSON value read strictly by RFC 8259: what the auth API accepts as a JSON body.
///
/// Nothing a lenient parser lets through is accepted: no trailing comma, no comment, no
/// duplicate key (two parsers behind one another would not agree on which one counts), no
/// bytes after the value, no byte-order mark, no unescaped control character, no lone
/// surrogate, no invalid UTF-8, no number form outside the grammar.
public enum JSONValue: Sendable, Equatable {
    /// A string.
    case string(String)
    /// A number, as written.
    case number(String)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null
    /// An array.
    case array([JSONValue])
    /// An object; its keys are distinct.
    case object([String: JSONValue])

    /// Deepest nesting of arrays and objects accepted: the API's bodies are flat objects.
    public static let maximumDepth = 32

    /// Parses one JSON text: a value with nothing but whitespace around it.
    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.isAtEnd else { throw parser.failure(.trailingContent) }
        return value
    }
}

/// Why a body is not strict JSON, and at which byte.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Reason: Sendable, Equatable {
        /// A byte the grammar does not allow here (a comment, a trailing comma, a quote missing…).
        case unexpected
        /// The text ends inside a value.
        case truncated
        /// Something follows the value.
        case trailingContent
        /// An object has the same key twice.
        case duplicateKey
        /// Arrays and objects nest deeper than ``JSONValue/maximumDepth``.
        case tooDeep
        /// The bytes are not UTF-8, or a `\u` escape is a lone surrogate.
        case invalidText
    }

    /// What is wrong.
    public let reason: Reason
    /// The byte offset where it was found.
    public let offset: Int

    /// One line for people; never quotes the body (it may hold a password).
    public var description: String {
        let what =
            switch reason {
            case .unexpected: "unexpected character"
            case .truncated: "unexpected end"
            case .trailingContent: "content after the value"
            case .duplicateKey: "duplicate key"
            case .tooDeep: "nested too deeply"
            case .invalidText: "invalid UTF-8 or escape"
            }
        return "\(what) at byte \(offset)"
    }
}

/// A recursive-descent reader over the bytes of one JSON text.
private struct JSONParser {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { index == bytes.count }

    func failure(_ reason: JSONSyntaxError.Reason) -> JSONSyntaxError {
        JSONSyntaxError(reason: reason, offset: index)
    }

    /// The byte at the cursor, or `truncated` at the end.
    func peek() throws(JSONSyntaxError) -> UInt8 {
        guard index < bytes.count else { throw failure(.truncated) }
        return bytes[index]
    }

    mutating func expect(_ byte: UInt8) throws(JSONSyntaxError) {
        guard try peek() == byte else { throw failure(.unexpected) }
        index += 1
    }

    /// RFC 8259 whitespace: space, tab, line feed, carriage return; nothing else.
    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        switch try peek() {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw failure(.unexpected)
        }
    }

    mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= JSONValue.maximumDepth else { throw failure(.tooDeep) }
        try expect(UInt8(ascii: "{"))
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            let keyOffset = index
            guard try peek() == UInt8(ascii: "\"") else { throw failure(.unexpected) }
            let key = try string()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let member = try value(depth: depth)
            // Keys are compared as the dictionary compares them: two spellings that would
            // land on one entry are the same key.
            guard members.updateValue(member, forKey: key) == nil else {
                throw JSONSyntaxError(reason: .duplicateKey, offset: keyOffset)
            }
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw failure(.unexpected)
            }
        }
    }

    mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= JSONValue.maximumDepth else { throw failure(.tooDeep) }
        try expect(UInt8(ascii: "["))
        var elements: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth))
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw failure(.unexpected)
            }
        }
    }

    mutating func literal(_ word: String) throws(JSONSyntaxError) {
        for byte in word.utf8 { try expect(byte) }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as written.
    mutating func number() throws(JSONSyntaxError) -> String {
        let start = index
        if try peek() == UInt8(ascii: "-") { index += 1 }
        if try peek() == UInt8(ascii: "0") {
            index += 1
        } else {
            try digits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            try digits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            let sign = try peek()
            if sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
            try digits()
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// One or more decimal digits.
    mutating func digits() throws(JSONSyntaxError) {
        let first = try peek()
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw failure(.unexpected) }
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
    }

    /// A string: UTF-8 checked, escapes decoded, surrogate pairs joined.
    mutating func string() throws(JSONSyntaxError) -> String {
        try expect(UInt8(ascii: "\""))
        var scalars = String.UnicodeScalarView()
        var run = index
        while true {
            let byte = try peek()
            switch byte {
            case UInt8(ascii: "\""):
                try appendUTF8(bytes[run..<index], to: &scalars)
                index += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                try appendUTF8(bytes[run..<index], to: &scalars)
                index += 1
                scalars.append(try escape())
                run = index
            case 0x00..<0x20:
                throw failure(.unexpected)
            default:
                index += 1
            }
        }
    }

    /// The scalar an escape after `\` stands for.
    mutating func escape() throws(JSONSyntaxError) -> Unicode.Scalar {
        let byte = try peek()
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{8}"
        case UInt8(ascii: "f"): return "\u{C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try hex4()
            switch unit {
            case 0xD800..<0xDC00:
                // A high surrogate must be followed by an escaped low one.
                let offset = index
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw JSONSyntaxError(reason: .invalidText, offset: offset)
                }
                index += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw JSONSyntaxError(reason: .invalidText, offset: offset) }
                return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
            case 0xDC00..<0xE000:
                throw failure(.invalidText)
            default:
                return Unicode.Scalar(unit)!
            }
        default:
            index -= 1
            throw failure(.unexpected)
        }
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = FormURLEncoded.hexValue(try peek()) else { throw failure(.unexpected) }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// Appends a run of unescaped string bytes, refusing invalid UTF-8.
    func appendUTF8(_ run: ArraySlice<UInt8>, to scalars: inout String.UnicodeScalarView) throws(JSONSyntaxError) {
        guard !run.isEmpty else { return }
        guard let text = String(validating: run, as: UTF8.self) else {
            throw JSONSyntaxError(reason: .invalidText, offset: run.startIndex)
        }
        scalars.append(contentsOf: text.unicodeScalars)
    }
}
