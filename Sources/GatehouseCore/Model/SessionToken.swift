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

    /// The hash of a cookie value with the exact shape of a token, else `nil`: what
    /// `SessionToken(cookieValue:)?.hash` gives, with one decode and no copy of the token.
    public static func hash(ofCookieValue value: some StringProtocol) -> TokenHash? {
        guard value.utf8.count == 43, let bytes = Base64URL.decode(value), bytes.count == 32 else { return nil }
        return TokenHash(SHA256.hash(data: bytes))
    }
}

/// The SHA-256 of a secret (session token, later reset and verification codes), as lowercase hex.
public struct TokenHash: Sendable, Hashable, CustomStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    init(_ digest: SHA256.Digest) {
        self.hex = digest.withUnsafeBytes { Self.hex($0) }
    }

    /// Wraps a stored hash.
    public init(hex: String) {
        self.hex = hex
    }

    /// The hex digest; safe to log, since it cannot be turned back into the token.
    public var description: String { hex }

    static let digits = Array("0123456789abcdef".utf8)

    /// Lowercase hex of bytes, without Foundation's formatting (this runs on every request).
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { output in
            var index = 0
            for byte in bytes {
                output[index] = digits[Int(byte >> 4)]
                output[index + 1] = digits[Int(byte & 0x0f)]
                index += 2
            }
            return index
        }
    }
}

/// Unpadded base64url (RFC 4648 §5).
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }()

    /// Encodes bytes without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= input.count {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            for shift in [18, 12, 6, 0] { output.append(alphabet[Int(chunk >> UInt32(shift) & 0x3f)]) }
            index += 3
        }
        let rest = input.count - index
        if rest == 1 {
            let chunk = UInt32(input[index]) << 16
            output += [alphabet[Int(chunk >> 18 & 0x3f)], alphabet[Int(chunk >> 12 & 0x3f)]]
        } else if rest == 2 {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            output += [alphabet[Int(chunk >> 18 & 0x3f)], alphabet[Int(chunk >> 12 & 0x3f)], alphabet[Int(chunk >> 6 & 0x3f)]]
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes unpadded base64url; `nil` for any other alphabet, padding, or a non-canonical
    /// encoding (stray bits in the last character), so each byte string has one spelling.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let input = text.utf8
        guard input.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for character in input {
            let value = values[Int(character)]
            guard value != 0xff else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero in a canonical encoding.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }
}
