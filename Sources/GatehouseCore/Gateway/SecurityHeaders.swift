import HTTPTypes

/// The headers on every response Gatehouse writes itself (never on an upstream's, which the
/// app owns): not cached, not sniffed as another type, not framed, no referrer sent on, and a
/// content security policy that lets a JSON answer load nothing.
public enum SecurityHeaders {
    /// The headers, in the order they are written.
    public static let fields: [HTTPField] = [cacheControl] + others

    static let cacheControl = HTTPField(name: .cacheControl, value: "no-store")
    static let others = [
        HTTPField(name: .xContentTypeOptions, value: "nosniff"),
        HTTPField(name: .referrerPolicy, value: "no-referrer"),
        HTTPField(name: .xFrameOptions, value: "DENY"),
        HTTPField(name: .contentSecurityPolicy, value: "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    ]

    /// Adds the headers to an answer being built, once: `Cache-Control` unless the answer set
    /// its own. One lookup each, on the verify answer's hot path.
    public static func apply(to headers: inout HTTPFields) {
        guard headers[.xFrameOptions] == nil else { return }
        if headers[.cacheControl] == nil { headers.append(cacheControl) }
        headers.append(contentsOf: others)
    }
}

/// The headers of Gatehouse's HTML pages: those of ``SecurityHeaders`` with a policy that lets
/// a page load its own stylesheet and images (and the configured logo), and submit its forms
/// to itself and to the hosts a login may return to (browsers apply `form-action` to the
/// redirect that follows a form, too). No script runs: the pages need none. The referrer
/// goes to the page's own origin only: under `no-referrer` a browser sends `Origin: null` with
/// every form, which the cross-site check rightly refuses; no page URL carries a secret (a
/// mailed link's token is moved out of the URL first, see the reset and verify pages).
public struct PageSecurityHeaders: Sendable {
    /// The headers, `Cache-Control` first.
    public let fields: [HTTPField]

    /// The headers for pages whose logins may return to `allowedRedirectHosts`
    /// (`allowed_redirect_hosts` entries) and whose logo is `logoURL`.
    public init(allowedRedirectHosts: [String], logoURL: String) {
        var formAction = ["'self'"]
        for entry in allowedRedirectHosts {
            let host = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
            for scheme in ["https", "http"] {
                formAction.append("\(scheme)://\(host)")
                if entry.hasPrefix(".") { formAction.append("\(scheme)://*.\(host)") }
            }
        }
        var images = ["'self'"]
        if let origin = Self.origin(of: logoURL) { images.append(origin) }
        let policy = "default-src 'none'; style-src 'self'; img-src \(images.joined(separator: " ")); form-action \(formAction.joined(separator: " ")); frame-ancestors 'none'; base-uri 'none'"
        fields = [
            SecurityHeaders.cacheControl,
            HTTPField(name: .xContentTypeOptions, value: "nosniff"),
            HTTPField(name: .referrerPolicy, value: "same-origin"),
            HTTPField(name: .xFrameOptions, value: "DENY"),
            HTTPField(name: .contentSecurityPolicy, value: policy),
        ]
    }

    /// `scheme://authority` of an absolute http(s) URL.
    static func origin(of url: String) -> String? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "https" || scheme == "http" else { return nil }
        let authority = url[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains(" "), !authority.contains(";"), !authority.contains("'") else { return nil }
        return "\(scheme)://\(authority)"
    }

    /// Sets the headers on a page's answer (``SecurityHeaders/apply(to:)`` then leaves it alone).
    public func apply(to headers: inout HTTPFields) {
        for field in fields { headers[field.name] = field.value }
    }
}

extension HTTPField.Name {
    /// `X-Frame-Options`.
    public static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    /// `Referrer-Policy`.
    public static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
