import Crypto
import Foundation

/// The secret a client holds in its cookie: 32 bytes from the system CSPRNG (SPEC I1).
///
/// Only ``hash`` is ever stored or used as a key; the token itself lives in the cookie alone
/// and has no `description`, so it cannot end up in a log line by interpolation.
public struct SessionToken: Sendable {
    /// The cookie value: 43 characters of unpadded base64url.
    public let cookieValue: String

    /// A fresh token.
    public static func generate() -> SessionToken {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return SessionToken(cookieValue: Base64URL.encode(bytes))
    }

    /// Accepts a cookie value only when it has the exact shape of a token.
    public init?(cookieValue: some StringProtocol) {
        guard cookieValue.utf8.count == 43, let bytes = Base64URL.decode(cookieValue), bytes.count == 32 else { return nil }
        self.cookieValue = String(cookieValue)
    }

    private init(cookieValue: String) {
        self.cookieValue = cookieValue
    }

    /// Lowercase hex SHA-256 of the token's bytes: what the stores keep.
    public var hash: TokenHash {
        TokenHash(SHA256.hash(data: Base64URL.decode(cookieValue) ?? []))
    }
}

/// The SHA-256 of a secret (session token, later reset and verification codes), as lowercase hex.
public struct TokenHash: Sendable, Hashable, CustomStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    init(_ digest: SHA256.Digest) {
        self.hex = digest.map { String(format: "%02x", $0) }.joined()
    }

    /// Wraps a stored hash.
    public init(hex: String) {
        self.hex = hex
    }

    /// The hex digest; safe to log, since it cannot be turned back into the token.
    public var description: String { hex }
}

/// Unpadded base64url (RFC 4648 §5).
public enum Base64URL {
    /// Encodes bytes without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes unpadded base64url; `nil` for any other alphabet or padding.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard text.utf8.allSatisfy({ isAlphabet($0) }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = base64.utf8.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { base64 += String(repeating: "=", count: 4 - remainder) }
        guard let data = Data(base64Encoded: base64) else { return nil }
        let bytes = [UInt8](data)
        // Reject non-canonical encodings (stray bits in the last character).
        guard encode(bytes) == text else { return nil }
        return bytes
    }

    static func isAlphabet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}
