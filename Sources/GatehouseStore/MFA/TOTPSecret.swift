/// The key an account shares with its authenticator app: the HMAC key of RFC 6238.
///
/// HummingbirdOTP takes its key as a `String` and uses the string's UTF-8 bytes, so a key must
/// be valid UTF-8. A generated key is 25 bytes of 7 random bits each (ASCII, 175 bits of
/// entropy, more than RFC 4226's recommended 160), which base32-encodes to exactly 40 characters.
public struct TOTPSecret: Sendable {
    /// Bytes in a generated key.
    public static let generatedByteCount = 25

    /// The key bytes, the same bytes an authenticator app decodes from ``base32``.
    public let bytes: [UInt8]

    /// Wraps stored key bytes; `nil` when they are empty or not valid UTF-8.
    public init?(bytes: [UInt8]) {
        guard !bytes.isEmpty, String(validating: bytes, as: UTF8.self) != nil else { return nil }
        self.bytes = bytes
    }

    /// Wraps bytes already known to be ASCII.
    private init(ascii bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// A new key from the system CSPRNG (`SystemRandomNumberGenerator`: `getrandom` on Linux).
    public static func generate() -> TOTPSecret {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<generatedByteCount).map { _ in UInt8.random(in: 0...0x7F, using: &generator) }
        return TOTPSecret(ascii: bytes)
    }

    /// The key in RFC 4648 base32 without padding, as users type it and otpauth URIs carry it.
    public var base32: String { Base32.encode(bytes) }

    /// The key as the `String` HummingbirdOTP expects; its UTF-8 view is exactly ``bytes``.
    var string: String { String(decoding: bytes, as: UTF8.self) }
}
