import Crypto
import GatehouseCore

/// A single-use recovery code, the way in when the authenticator is lost: 12 characters of
/// Crockford's base32 (`0–9 a–z` without `i l o u`, so no two characters look alike), shown
/// as `xxxx-xxxx-xxxx`, 60 random bits.
///
/// Stored hashed: SHA-256 of the user id and the normalized code (``hash(userID:)``). A fast
/// hash is enough for 60 bits drawn from the CSPRNG (a stolen hash still takes ~2⁶⁰ guesses,
/// and the code is a second factor, useless without the password), and it lets the store find
/// a code by its hash and delete it on use, which makes it single use. The user id in the hash
/// keeps one guess from testing every user's codes at once.
public struct RecoveryCode: Sendable, Hashable {
    /// Codes in a set given to a user.
    public static let setSize = 10
    /// Characters in a code, dashes left out.
    public static let length = 12
    /// The 32 characters codes are made of.
    static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    /// The code in canonical form: 12 lowercase alphabet characters, no dashes.
    public let normalized: String

    /// Reads a code as a user typed it: case, spaces and dashes do not matter, and the look-alikes
    /// `o` → `0` and `i`, `l` → `1` are accepted; `nil` if it is not a well-formed code.
    public init?(_ input: String) {
        var characters: [UInt8] = []
        for byte in input.lowercased().utf8 where byte != UInt8(ascii: " ") && byte != UInt8(ascii: "-") {
            let canonical: UInt8 =
                switch byte {
                case UInt8(ascii: "o"): UInt8(ascii: "0")
                case UInt8(ascii: "i"), UInt8(ascii: "l"): UInt8(ascii: "1")
                default: byte
                }
            guard Self.alphabet.contains(canonical) else { return nil }
            characters.append(canonical)
        }
        guard characters.count == Self.length else { return nil }
        normalized = String(decoding: characters, as: UTF8.self)
    }

    /// A new code from the system CSPRNG.
    public static func generate() -> RecoveryCode {
        var generator = SystemRandomNumberGenerator()
        let characters = (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return RecoveryCode(normalized: String(decoding: characters, as: UTF8.self))
    }

    /// A set of ``setSize`` distinct new codes, to show once and store hashed.
    public static func generateSet() -> [RecoveryCode] {
        var codes: [RecoveryCode] = []
        while codes.count < setSize {
            let code = generate()
            if !codes.contains(code) { codes.append(code) }
        }
        return codes
    }

    private init(normalized: String) {
        self.normalized = normalized
    }

    /// The code as shown to the user: `xxxx-xxxx-xxxx`.
    public var formatted: String {
        let characters = Array(normalized)
        return stride(from: 0, to: characters.count, by: 4).map { String(characters[$0..<min($0 + 4, characters.count)]) }.joined(separator: "-")
    }

    /// What the store keeps: SHA-256 of `userID`, a NUL byte, and the normalized code.
    public func hash(userID: String) -> TokenHash {
        TokenHash(hex: SHA256.hash(data: Array(userID.utf8) + [0] + Array(normalized.utf8)).withUnsafeBytes { TokenHash.hex($0) })
    }
}
