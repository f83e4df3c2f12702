import Crypto
import Foundation

/// Encrypts TOTP secrets at rest with AES-256-GCM, each bound to the user it belongs to.
///
/// The sealed form is `v1.` + base64(nonce ‖ ciphertext ‖ tag), text for a SQLite column. The
/// associated data is `gatehouse-mfa-secret:v1:` + the user id: a sealed secret copied into
/// another user's row does not open, and neither does one sealed under another key or changed
/// in any byte. A fresh random 96-bit nonce is drawn for every seal.
///
/// `@unchecked Sendable`: `SymmetricKey` is an immutable value (its storage is never written
/// after creation) that swift-crypto does not mark `Sendable`.
public struct SecretBox: @unchecked Sendable {
    /// The environment variable that can carry the key.
    public static let environmentVariable = "GATEHOUSE_MFA_KEY"
    /// The prefix of the current sealed format.
    static let versionPrefix = "v1."

    private let key: SymmetricKey

    /// A box for a 256-bit key; `nil` for any other length.
    public init?(key: SymmetricKey) {
        guard key.bitCount == 256 else { return nil }
        self.init(checkedKey: key)
    }

    /// A box for a key already known to be 256 bits long.
    init(checkedKey key: SymmetricKey) {
        self.key = key
    }

    /// `secret` encrypted for `userID`, in the versioned text form.
    public func seal(_ secret: [UInt8], userID: String) throws -> String {
        let box = try AES.GCM.seal(secret, using: key, nonce: AES.GCM.Nonce(), authenticating: Self.associatedData(userID))
        guard let combined = box.combined else { throw SecretBoxError(message: "AES-GCM produced no combined form") }
        return Self.versionPrefix + combined.base64EncodedString()
    }

    /// The secret `sealed` holds; throws the same error whether the text is malformed, the key
    /// is wrong, the user id is not the one it was sealed for, or a byte was changed.
    public func open(_ sealed: String, userID: String) throws -> [UInt8] {
        guard sealed.hasPrefix(Self.versionPrefix),
            let combined = Data(base64Encoded: String(sealed.dropFirst(Self.versionPrefix.count))),
            let box = try? AES.GCM.SealedBox(combined: combined),
            let secret = try? AES.GCM.open(box, using: key, authenticating: Self.associatedData(userID))
        else { throw SecretBoxError(message: "the stored MFA secret of user \(userID) does not open with this key") }
        return Array(secret)
    }

    private static func associatedData(_ userID: String) -> [UInt8] {
        Array("gatehouse-mfa-secret:v1:\(userID)".utf8)
    }
}

/// A sealed secret that could not be made or opened.
public struct SecretBoxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong; never contains key or secret material.
    public var message: String

    /// Creates an error.
    public init(message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}
