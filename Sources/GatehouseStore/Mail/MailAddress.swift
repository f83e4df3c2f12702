import Foundation

/// A mailbox: an optional display name and an address, as in `Gatehouse <no-reply@localhost>`.
///
/// Security invariant: a `MailAddress` can be written into a header or an SMTP command as
/// is. The address is a dot-atom `local@domain` of printable ASCII without `<`, `>`, quotes,
/// commas or spaces, and the display name has no control characters, so neither can end a
/// header line, add a recipient or close the `<…>` of `MAIL FROM`. Internationalised
/// addresses (SMTPUTF8) are refused rather than sent half-supported.
public struct MailAddress: Sendable, Equatable, CustomStringConvertible {
    /// The name shown to people, if any (any Unicode text without control characters).
    public let displayName: String?
    /// `local@domain`.
    public let address: String

    /// Checks and wraps an address and an optional display name.
    public init(address: String, displayName: String? = nil) throws(MailFormatError) {
        try Self.validate(address: address)
        if let displayName {
            guard !displayName.unicodeScalars.contains(where: Self.isControl) else {
                throw .headerInjection("display name")
            }
        }
        let name = displayName?.trimmingCharacters(in: .whitespaces)
        self.address = address
        self.displayName = (name?.isEmpty ?? true) ? nil : name
    }

    /// Parses `Name <local@domain>`, `"Quoted, Name" <local@domain>`, `<local@domain>` or a
    /// bare `local@domain`; anything after the closing `>` is refused.
    public init(parsing text: String) throws(MailFormatError) {
        guard !text.unicodeScalars.contains(where: Self.isControl) else { throw .headerInjection("address") }
        guard let open = text.lastIndex(of: "<") else {
            try self.init(address: text.trimmingCharacters(in: .whitespaces))
            return
        }
        guard text.hasSuffix(">"), text.firstIndex(of: ">") == text.index(before: text.endIndex) else {
            throw .invalidAddress("Nothing may follow the address in <…>.")
        }
        let address = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        var name = text[..<open].trimmingCharacters(in: .whitespaces)
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            name = Self.unquoted(name.dropFirst().dropLast())
        }
        try self.init(address: address, displayName: name)
    }

    /// The part after `@`.
    public var domain: String { String(address.reversed().prefix { $0 != "@" }.reversed()) }

    /// `Name <local@domain>` (name quoted if needed, not encoded) or the bare address.
    public var description: String {
        guard let displayName else { return address }
        return "\(Self.phrase(displayName)) <\(address)>"
    }

    /// The header form: as ``description``, but a non-ASCII name becomes RFC 2047 encoded-words.
    var headerValue: String {
        guard let displayName else { return address }
        let name = displayName.unicodeScalars.allSatisfy(\.isASCII)
            ? Self.phrase(displayName)
            : EncodedWord.encode(displayName).joined(separator: "\r\n ")
        return "\(name) <\(address)>"
    }

    /// A display name as an RFC 5322 phrase: atoms as they are, otherwise a quoted-string.
    private static func phrase(_ name: String) -> String {
        let atomic = name.unicodeScalars.allSatisfy { $0 == " " || isAtomText($0) }
        guard !atomic else { return name }
        let escaped = name.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
        return "\"\(escaped)\""
    }

    private static func unquoted(_ quoted: Substring) -> String {
        var result = ""
        var escaping = false
        for character in quoted {
            if escaping || character != "\\" {
                result.append(character)
                escaping = false
            } else {
                escaping = true
            }
        }
        return result
    }

    private static func validate(address: String) throws(MailFormatError) {
        guard !address.unicodeScalars.contains(where: isControl) else { throw .headerInjection("address") }
        guard address.utf8.count <= 254 else { throw .invalidAddress("The address is longer than 254 characters.") }
        guard let at = address.lastIndex(of: "@") else { throw .invalidAddress("The address has no @.") }
        let local = address[..<at]
        let domain = address[address.index(after: at)...]
        guard isDotAtom(local, allowed: isAtomText), local.utf8.count <= 64 else {
            throw .invalidAddress("The part before @ must be letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots.")
        }
        let isLabel: (Unicode.Scalar) -> Bool = { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }
        guard isDotAtom(domain, allowed: isLabel) else {
            throw .invalidAddress("The domain must be ASCII letters, digits and hyphens separated by dots.")
        }
    }

    /// Non-empty runs of `allowed` characters joined by single dots.
    private static func isDotAtom(_ text: Substring, allowed: (Unicode.Scalar) -> Bool) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.allSatisfy { !$0.isEmpty && $0.unicodeScalars.allSatisfy(allowed) }
    }

    /// RFC 5322 `atext`.
    static func isAtomText(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.isASCII, scalar.value > 32, scalar.value < 127 else { return false }
        return !"()<>[]:;@\\,.\"".unicodeScalars.contains(scalar)
    }

    /// C0 controls (CR, LF, NUL, TAB …), DEL, C1 controls and the Unicode line separators.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 32 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}
