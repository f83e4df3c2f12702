/// Cookie header parsing and `Set-Cookie` building, pure functions.
public enum CookieHeader {
    /// Characters allowed in a cookie name (RFC 6265 `token`).
    static let tokenCharacters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

    /// Whether `name` is a valid cookie name.
    public static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { tokenCharacters.contains($0) }
    }

    /// How many session cookies of one request are looked at. A browser sends several
    /// cookies of one name only when paths or domains differ (two or three at most in
    /// practice); a request with a thousand of them must not cost a thousand lookups,
    /// Redis reads or logout transactions. Those after the first few are ignored.
    public static let sessionCookiesConsidered = 4

    /// The values of the cookie `name` across `Cookie` header values, in order: at most
    /// `limit` of them (the first ones), since each is something a caller will look up.
    ///
    /// Browsers may send several cookies of one name (different paths or domains); callers try each.
    /// Works on the UTF-8 bytes: it runs for every verified and proxied request.
    public static func values(named name: String, in headers: some Sequence<String>, atMost limit: Int = sessionCookiesConsidered) -> [Substring] {
        var found: [Substring] = []
        for header in headers {
            guard found.count < limit else { break }
            forEachPair(in: header) { key, value in
                guard found.count < limit, header.utf8[key].elementsEqual(name.utf8) else { return }
                found.append(unquoted(header, value))
            }
        }
        return found
    }

    /// Removes every cookie called `name` from one `Cookie` header value; `nil` when nothing is left.
    public static func removing(named name: String, from header: String) -> String? {
        var kept: [Substring] = []
        forEachPiece(in: header) { piece, key in
            if !header.utf8[key].elementsEqual(name.utf8) { kept.append(header[piece]) }
        }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// `header[value]` without one pair of surrounding double quotes.
    private static func unquoted(_ header: String, _ value: Range<String.Index>) -> Substring {
        let bytes = header.utf8
        if bytes.distance(from: value.lowerBound, to: value.upperBound) >= 2, bytes[value.lowerBound] == UInt8(ascii: "\""),
            bytes[bytes.index(before: value.upperBound)] == UInt8(ascii: "\"")
        {
            return header[bytes.index(after: value.lowerBound)..<bytes.index(before: value.upperBound)]
        }
        return header[value]
    }

    private static func isSpaceOrTab(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// Calls `body` with each non-empty `;`-separated piece of `header` (leading spaces and tabs
    /// dropped) and its key (the piece up to `=`, trailing spaces and tabs dropped).
    private static func forEachPiece(in header: String, _ body: (_ piece: Range<String.Index>, _ key: Range<String.Index>) -> Void) {
        let bytes = header.utf8
        var start = bytes.startIndex
        while true {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
            var pieceStart = start
            while pieceStart < end, isSpaceOrTab(bytes[pieceStart]) { pieceStart = bytes.index(after: pieceStart) }
            let equals = bytes[pieceStart..<end].firstIndex(of: UInt8(ascii: "=")) ?? end
            var keyEnd = equals
            while keyEnd > pieceStart, isSpaceOrTab(bytes[bytes.index(before: keyEnd)]) { keyEnd = bytes.index(before: keyEnd) }
            // Empty pieces (`a=1;;b=2`, a trailing `;`) are not pieces.
            if start < end { body(pieceStart..<end, pieceStart..<keyEnd) }
            guard end < bytes.endIndex else { return }
            start = bytes.index(after: end)
        }
    }

    /// Calls `body` with the key and the value (trailing spaces and tabs dropped) of each
    /// `key=value` pair of `header`; pieces without `=` are skipped.
    private static func forEachPair(in header: String, _ body: (_ key: Range<String.Index>, _ value: Range<String.Index>) -> Void) {
        let bytes = header.utf8
        forEachPiece(in: header) { piece, key in
            let equals = bytes[key.upperBound..<piece.upperBound].firstIndex(of: UInt8(ascii: "="))
            guard let equals else { return }
            var valueEnd = piece.upperBound
            let valueStart = bytes.index(after: equals)
            while valueEnd > valueStart, isSpaceOrTab(bytes[bytes.index(before: valueEnd)]) { valueEnd = bytes.index(before: valueEnd) }
            body(key, valueStart..<valueEnd)
        }
    }

    /// The `Set-Cookie` value that stores a session token.
    public static func sessionCookie(_ configuration: CookieConfiguration, value: String, maxAge: Duration) -> String {
        attributes(configuration, pair: "\(configuration.effectiveName)=\(value)", maxAge: maxAge.milliseconds / 1000)
    }

    /// The `Set-Cookie` value that deletes the session cookie (`Max-Age=0`).
    public static func clearingCookie(_ configuration: CookieConfiguration) -> String {
        attributes(configuration, pair: "\(configuration.effectiveName)=", maxAge: 0)
    }

    static func attributes(_ configuration: CookieConfiguration, pair: String, maxAge: Int64) -> String {
        var cookie = "\(pair); Max-Age=\(maxAge); Path=/"
        if !configuration.domain.isEmpty { cookie += "; Domain=\(configuration.domain)" }
        cookie += "; HttpOnly; SameSite=Lax"
        if configuration.secure { cookie += "; Secure" }
        return cookie
    }
}
