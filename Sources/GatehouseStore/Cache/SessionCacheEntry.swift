import Foundation
import GatehouseCore

/// What Redis holds for a session: everything a validation needs, so a hit answers without
/// SQLite. Keyed by the token's SHA-256, never the token (I1).
///
/// Format: `v1` and the fields, separated by U+001F (which no field may contain). A revoked
/// session is a tombstone, `revoked`, so that a back-fill racing the revocation cannot
/// bring the session back (back-fills use `SET … NX`).
enum SessionCacheEntry {
    static let tombstone = "revoked"
    static let separator: Character = "\u{1F}"

    static func encode(_ user: User, _ session: Session) -> String {
        func clean(_ text: String) -> String { text.replacingOccurrences(of: String(separator), with: "") }
        return [
            "v1", user.id, clean(user.email), String(Timestamp.milliseconds(user.createdAt)), user.emailVerified ? "1" : "0",
            user.mfaEnabled ? "1" : "0", user.isActive ? "0" : "1", session.id, String(Timestamp.milliseconds(session.createdAt)),
            String(Timestamp.milliseconds(session.expiresAt)), String(Timestamp.milliseconds(session.lastSeenAt)),
            clean(session.ip), clean(session.userAgent),
        ].joined(separator: String(separator))
    }

    /// The user and session in an entry; `nil` for a tombstone or anything unreadable.
    static func decode(_ text: String, tokenHash: TokenHash) -> (User, Session)? {
        let fields = text.split(separator: separator, omittingEmptySubsequences: false)
        guard fields.count == 13, fields[0] == "v1",
            let userCreated = Int64(fields[3]), let sessionCreated = Int64(fields[8]),
            let expires = Int64(fields[9]), let lastSeen = Int64(fields[10])
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
}
