import GatehouseCore
import Logging

/// Formats one log record as one line of bytes, `text` or `json` (SPEC §3): the pure part of
/// ``GatehouseLogHandler``, tested without a process. No Foundation formatter on this path:
/// the line is built into one `[UInt8]` with room reserved up front.
///
/// - `text`: `2025-01-02T03:04:05.678Z info gatehouse: message key=value ...`, keys sorted;
///   a value with a space, a quote or a control character is written as a JSON string.
/// - `json`: `{"ts":"…","level":"info","msg":"…", metadata keys sorted}`; every metadata value
///   a string (arrays and dictionaries as JSON arrays and objects of strings).
///
/// Either way a line never holds a raw newline, so one record is one line.
public enum LogLine {
    /// The keys the JSON line writes before the metadata; a metadata key equal to one of them is
    /// written with a leading `_` so that no key appears twice.
    static let reservedKeys: Set<String> = ["ts", "level", "msg"]

    /// The whole line, newline included.
    public static func format(
        _ format: LogFormat, timestamp: LogTimestamp, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(192 + message.utf8.count + metadata.count * 32)
        let fields = metadata.sorted { $0.key < $1.key }
        switch format {
        case .text:
            timestamp.append(to: &bytes)
            bytes.append(UInt8(ascii: " "))
            bytes.append(contentsOf: level.rawValue.utf8)
            if !label.isEmpty {
                bytes.append(UInt8(ascii: " "))
                appendEscaped(label, to: &bytes, quotes: false)
            }
            bytes.append(UInt8(ascii: ":"))
            bytes.append(UInt8(ascii: " "))
            appendEscaped(message, to: &bytes, quotes: false)
            for (key, value) in fields {
                bytes.append(UInt8(ascii: " "))
                appendEscaped(key, to: &bytes, quotes: false)
                bytes.append(UInt8(ascii: "="))
                appendTextValue(value, to: &bytes)
            }
        case .json:
            bytes.append(contentsOf: #"{"ts":""#.utf8)
            timestamp.append(to: &bytes)
            bytes.append(contentsOf: #"","level":""#.utf8)
            bytes.append(contentsOf: level.rawValue.utf8)
            bytes.append(contentsOf: #"","msg":"#.utf8)
            appendJSONString(message, to: &bytes)
            for (key, value) in fields {
                bytes.append(UInt8(ascii: ","))
                appendJSONString(reservedKeys.contains(key) ? "_" + key : key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                appendJSONValue(value, to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// `string` as a JSON string, quotes included: `"` and `\` escaped, control characters as
    /// `\n`, `\r`, `\t` or `\u00XX`, everything else (non-ASCII included) passed as UTF-8.
    public static func appendJSONString(_ string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        appendEscaped(string, to: &bytes, quotes: true)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A text value: bare when it is one plain word, else a JSON string.
    static func appendTextValue(_ value: Logger.MetadataValue, to bytes: inout [UInt8]) {
        let string: String
        switch value {
        case .string(let text): string = text
        case .stringConvertible(let convertible): string = convertible.description
        case .array, .dictionary: string = value.description
        }
        if isBare(string) {
            bytes.append(contentsOf: string.utf8)
        } else {
            appendJSONString(string, to: &bytes)
        }
    }

    /// A metadata value in JSON: strings, arrays of them, objects of them (keys sorted).
    static func appendJSONValue(_ value: Logger.MetadataValue, to bytes: inout [UInt8]) {
        switch value {
        case .string(let text):
            appendJSONString(text, to: &bytes)
        case .stringConvertible(let convertible):
            appendJSONString(convertible.description, to: &bytes)
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                appendJSONValue(element, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, element)) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                appendJSONValue(element, to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Whether a text value can be written without quotes: non-empty, no space, quote,
    /// backslash or control character.
    static func isBare(_ string: String) -> Bool {
        guard !string.isEmpty else { return false }
        return string.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// `string`'s UTF-8 with control characters escaped (and `"` and `\` when `quotes`), copied
    /// in runs between the bytes that need escaping.
    static func appendEscaped(_ string: String, to bytes: inout [UInt8], quotes: Bool) {
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                let needsEscape = byte < 0x20 || (quotes && (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")))
                guard needsEscape else { continue }
                if runStart < index { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                runStart = index + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    bytes.append(contentsOf: "u00".utf8)
                    bytes.append(hexDigits[Int(byte >> 4)])
                    bytes.append(hexDigits[Int(byte & 0x0F)])
                }
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
