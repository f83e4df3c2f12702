import Crypto
import Foundation

/// SHA-256 in lowercase hex, as ``EchoUpstream`` reports the body it received.
public enum SHA256Hex {
    /// The digest of `text`'s UTF-8 bytes.
    public static func of(_ text: String) -> String {
        hex(SHA256.hash(data: Data(text.utf8)))
    }

    /// `digest` in lowercase hex.
    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
