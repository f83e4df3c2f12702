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

extension HTTPField.Name {
    /// `X-Frame-Options`.
    public static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    /// `Referrer-Policy`.
    public static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
