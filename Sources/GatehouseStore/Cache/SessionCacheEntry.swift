import Crypto
import Foundation
import GatehouseCore

/// What Redis holds for a session: everything a validation needs, so a hit answers without
/// SQLite. Keyed by the token's SHA-256, never the token (I1).
///
/// Entries are authenticated: anyone who can write to a shared Redis could otherwise mint a
/// session by writing an entry for a token of their choosing. Each entry ends with an
/// HMAC-SHA256, under ``CacheEntryKey``, of its fields and the token hash it is stored for
/// (so an entry copied under another key fails too), checked on every read; an entry that
/// fails is treated as absent (SQLite answers).
///
/// Format: `v2`, the fields, and the MAC in hex, separated by U+001F (which no field may
/// contain). A revoked session is a tombstone, `revoked`, so that a back-fill racing the
/// revocation cannot bring the session back (back-fills use `SET … NX`); a tombstone needs no
/// MAC: a forged one can only refuse a session.
/// `@unchecked Sendable`: `SymmetricKey` is an immutable value (its storage is never written
/// after creation) that swift-crypto does not mark `Sendable`.
struct SessionCacheEntry: @unchecked Sendable {
    static let tombstone = "revoked"
    static let separator: Character = "\u{1F}"
    static let version = "v2"

    /// The key of the MAC.
    let key: SymmetricKey

    func encode(_ user: User, _ session: Session) -> String {
        func clean(_ text: String) -> String { text.filter { $0 != Self.separator && !Self.isControl($0) } }
        let body = [
            Self.version, user.id, clean(user.email), String(Timestamp.milliseconds(user.createdAt)), user.emailVerified ? "1" : "0",
            user.mfaEnabled ? "1" : "0", user.isActive ? "0" : "1", session.id, String(Timestamp.milliseconds(session.createdAt)),
            String(Timestamp.milliseconds(session.expiresAt)), String(Timestamp.milliseconds(session.lastSeenAt)),
            clean(session.ip), clean(session.userAgent),
        ].joined(separator: String(Self.separator))
        return body + String(Self.separator) + mac(body, tokenHash: session.tokenHash)
    }

    /// The user and session in an entry; `nil` for a tombstone, anything unreadable, an entry
    /// whose MAC does not match (forged, or written for another token hash), or fields that
    /// could not be written into a header.
    func decode(_ text: String, tokenHash: TokenHash) -> (User, Session)? {
        guard let cut = text.lastIndex(of: Self.separator) else { return nil }
        let body = text[..<cut]
        let presented = text[text.index(after: cut)...]
        guard let expected = Data(hex: presented), expected.count == SHA256.byteCount,
            HMAC<SHA256>.isValidAuthenticationCode(expected, authenticating: Self.authenticated(body, tokenHash: tokenHash), using: key)
        else { return nil }
        let fields = body.split(separator: Self.separator, omittingEmptySubsequences: false)
        guard fields.count == 13, fields[0] == Self.version,
            let userCreated = Int64(fields[3]), let sessionCreated = Int64(fields[8]),
            let expires = Int64(fields[9]), let lastSeen = Int64(fields[10]),
            // The user id and email become X-User-Id and X-User-Email: never a CR or LF.
            !fields.contains(where: { $0.contains(where: Self.isControl) })
        else { return nil }
        let user = User(
            id: String(fields[1]), email: String(fields[2]), createdAt: Timestamp.date(milliseconds: userCreated),
            emailVerified: fields[4] == "1", mfaEnabled: fields[5] == "1", disabledAt: fields[6] == "1" ? Date(timeIntervalSince1970: 0) : nil
        )
        let session = Session(
            id: String(fields[7]), tokenHash: tokenHash, userId: user.id, createdAt: Timestamp.date(milliseconds: sessionCreated),
            expiresAt: Timestamp.date(milliseconds: expires), lastSeenAt: Timestamp.date(milliseconds: lastSeen),
            ip: String(fields[11]), userAgent: String(fields[12])
        )
        return (user, session)
    }

    private func mac(_ body: String, tokenHash: TokenHash) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Self.authenticated(Substring(body), tokenHash: tokenHash), using: key)
        return TokenHash.hex(Array(code))
    }

    /// What the MAC covers: the token hash the entry belongs to, then its fields.
    private static func authenticated(_ body: Substring, tokenHash: TokenHash) -> Data {
        var data = Data(tokenHash.hex.utf8)
        data.append(0x1F)
        data.append(contentsOf: body.utf8)
        return data
    }

    private static func isControl(_ character: Character) -> Bool {
        character.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}

extension Data {
    /// Bytes from lowercase or uppercase hex; `nil` for anything else.
    init?(hex: Substring) {
        guard hex.utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for byte in hex.utf8 {
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let value = high {
                bytes.append(value << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        self.init(bytes)
    }
}
