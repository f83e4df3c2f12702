import HTTPTypes

/// The headers on every response Gatehouse writes itself (never on an upstream's, which the
/// app owns): not cached, not sniffed as another type, not framed, no referrer sent on, and a
/// content security policy that lets a JSON answer load nothing.
public enum SecurityHeaders {
    /// The headers, in the order they are written.
    public static let fields: [HTTPField] = [
        HTTPField(name: .cacheControl, value: "no-store"),
        HTTPField(name: .xContentTypeOptions, value: "nosniff"),
        HTTPField(name: .referrerPolicy, value: "no-referrer"),
        HTTPField(name: .xFrameOptions, value: "DENY"),
        HTTPField(name: .contentSecurityPolicy, value: "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    ]

    /// Adds each header `fields` does not already set.
    public static func apply(to headers: inout HTTPFields) {
        for field in fields where headers[field.name] == nil { headers.append(field) }
    }
}

extension HTTPField.Name {
    /// `X-Frame-Options`.
    public static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    /// `Referrer-Policy`.
    public static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
