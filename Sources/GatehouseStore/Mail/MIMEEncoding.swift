import Foundation

/// Quoted-printable (RFC 2045 §6.7) for UTF-8 bodies: printable ASCII stays readable, every
/// other byte becomes `=XX`, and lines are at most 76 characters, long ones broken with soft
/// line breaks (`=` at the end of a line).
enum QuotedPrintable {
    /// The longest encoded line, not counting CRLF.
    static let lineLimit = 76

    /// Encodes `text`; its line breaks (CRLF, LF or CR) become CRLF hard breaks.
    static func encode(_ text: String) -> String {
        text.mailLines.map(encode(line:)).joined(separator: "\r\n")
    }

    private static func encode(line: Substring) -> String {
        let bytes = Array(line.utf8)
        var output = ""
        var current = 0
        for (index, byte) in bytes.enumerated() {
            let isLast = index == bytes.count - 1
            let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 32 || byte == 9) && !isLast)
            let token = literal ? String(UnicodeScalar(byte)) : "=" + hex(byte)
            // Keep room for the soft break's `=` unless this token ends the line.
            let limit = isLast ? lineLimit : lineLimit - 1
            if current + token.count > limit {
                output += "=\r\n"
                current = 0
            }
            output += token
            current += token.count
        }
        return output
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}

/// RFC 2047 encoded-words (`=?UTF-8?B?…?=`) for non-ASCII header text.
enum EncodedWord {
    /// UTF-8 bytes per word: 36 bytes are 48 base64 characters, a 60-character word, so a
    /// word fits on a line after `Subject: ` or a folding space (RFC 2047 §2: at most 75).
    static let bytesPerWord = 36

    /// `text` as encoded-words, each holding whole characters (§5), to be joined by folding
    /// whitespace (`"\r\n "`); a decoder drops that whitespace between words (§6.2).
    static func encode(_ text: String) -> [String] {
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > bytesPerWord {
                words.append(word(chunk))
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append(word(chunk)) }
        return words
    }

    private static func word(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?\(Data(bytes).base64EncodedString())?="
    }
}

/// Unstructured header values (`Subject`): plain ASCII stays plain, folded at spaces into
/// lines of at most 78 characters; anything else is encoded-words.
enum HeaderText {
    /// The longest header line RFC 5322 §2.1.1 recommends, not counting CRLF.
    static let lineLimit = 78

    /// `name: value` folded, without the final CRLF. `value` must have no control characters.
    static func field(_ name: String, _ value: String) -> String {
        let prefix = name + ": "
        if isPlain(value), let folded = fold(prefix, value) { return folded }
        return prefix + EncodedWord.encode(value).joined(separator: "\r\n ")
    }

    /// Printable ASCII that a reader would not take for an encoded-word.
    private static func isPlain(_ value: String) -> Bool {
        value.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 32 && $0.value < 127 } && !value.contains("=?")
    }

    /// Greedy folding at single spaces; nil if a word is too long to fit a line.
    private static func fold(_ prefix: String, _ value: String) -> String? {
        if prefix.count + value.count <= lineLimit { return prefix + value }
        guard !value.hasPrefix(" "), !value.hasSuffix(" "), !value.contains("  ") else { return nil }
        let words = value.split(separator: " ")
        var lines: [String] = []
        var line = prefix + words[0]
        for word in words.dropFirst() {
            if line.count + 1 + word.count <= lineLimit {
                line += " " + word
            } else {
                lines.append(line)
                line = " " + word
            }
        }
        guard line.count <= lineLimit, lines.allSatisfy({ $0.count <= lineLimit }) else { return nil }
        lines.append(line)
        return lines.joined(separator: "\r\n")
    }
}

extension StringProtocol {
    /// The lines of a text whatever its line breaks (CRLF, LF or CR); the last is empty when
    /// the text ends with a line break.
    var mailLines: [Substring] {
        String(self).replacing("\r\n", with: "\n").replacing("\r", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
    }
}
