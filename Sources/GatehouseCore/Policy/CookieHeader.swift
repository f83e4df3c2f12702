/// Cookie header parsing and `Set-Cookie` building, pure functions.
public enum CookieHeader {
    /// Characters allowed in a cookie name (RFC 6265 `token`).
    static let tokenCharacters = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

    /// Whether `name` is a valid cookie name.
    public static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { tokenCharacters.contains($0) }
    }

    /// Every value of the cookie `name` across `Cookie` header values, in order.
    ///
    /// Browsers may send several cookies of one name (different paths or domains); callers try each.
    public static func values(named name: String, in headers: some Sequence<String>) -> [Substring] {
        var found: [Substring] = []
        for header in headers {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " || $0 == "\t" }
                guard let equals = trimmed.firstIndex(of: "=") else { continue }
                let key = trimmed[..<equals].trimmingSuffix { $0 == " " || $0 == "\t" }
                guard key == name else { continue }
                var value = trimmed[trimmed.index(after: equals)...].trimmingSuffix { $0 == " " || $0 == "\t" }
                if value.count >= 2, value.first == "\"", value.last == "\"" {
                    value = value.dropFirst().dropLast()
                }
                found.append(value)
            }
        }
        return found
    }

    /// Removes every cookie called `name` from one `Cookie` header value; `nil` when nothing is left.
    public static func removing(named name: String, from header: String) -> String? {
        let kept = header.split(separator: ";").filter { pair in
            let trimmed = pair.drop { $0 == " " || $0 == "\t" }
            let key = trimmed.prefix { $0 != "=" }.trimmingSuffix { $0 == " " || $0 == "\t" }
            return key != name
        }
        .map { $0.drop { $0 == " " || $0 == "\t" } }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// The `Set-Cookie` value that stores a session token.
    public static func sessionCookie(_ configuration: CookieConfiguration, value: String, maxAge: Duration) -> String {
        attributes(configuration, pair: "\(configuration.name)=\(value)", maxAge: maxAge.milliseconds / 1000)
    }

    /// The `Set-Cookie` value that deletes the session cookie (`Max-Age=0`).
    public static func clearingCookie(_ configuration: CookieConfiguration) -> String {
        attributes(configuration, pair: "\(configuration.name)=", maxAge: 0)
    }

    static func attributes(_ configuration: CookieConfiguration, pair: String, maxAge: Int64) -> String {
        var cookie = "\(pair); Max-Age=\(maxAge); Path=/"
        if !configuration.domain.isEmpty { cookie += "; Domain=\(configuration.domain)" }
        cookie += "; HttpOnly; SameSite=Lax"
        if configuration.secure { cookie += "; Secure" }
        return cookie
    }
}

extension Substring {
    func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var result = self
        while let last = result.last, predicate(last) { result = result.dropLast() }
        return result
    }
}
