import Foundation
import HTTPTypes

/// The cross-site check of SPEC §2.4: which requests a page on another site may not make
/// with the user's cookie (CSRF, login CSRF, cross-site WebSocket hijacking).
///
/// A browser says where a request comes from in `Origin` (every POST, PUT, PATCH, DELETE and
/// WebSocket upgrade it sends cross-origin, and most same-origin ones) and in
/// `Sec-Fetch-Site`. A request is cross-site when `Sec-Fetch-Site` is `cross-site`, or when
/// its `Origin` is neither Gatehouse's own (`public_url`, else the request's host) nor one of
/// `allowed_origins`; `Origin: null` (sandboxed frames, some redirects) and several origins
/// are cross-site too. A request with neither header is not a browser's and is not refused on
/// this ground: what stops a forged form is that browsers always send one of them.
public struct CrossSitePolicy: Sendable {
    /// `public_url`'s origin, or `nil`: compare with the request's own host.
    public let ownOrigin: String?
    /// `allowed_origins`, normalised.
    public let allowedOrigins: Set<String>

    /// The policy of `public_url` and `allowed_origins`.
    public init(publicURL: String, allowedOrigins: [String]) {
        ownOrigin = publicURL.isEmpty ? nil : Self.origin(publicURL, allowingPath: true)
        self.allowedOrigins = Set(allowedOrigins.compactMap { Self.origin($0) })
    }

    /// Whether a request's method changes state: everything but GET, HEAD, OPTIONS and TRACE.
    public static func changesState(_ method: HTTPRequest.Method) -> Bool {
        method != .get && method != .head && method != .options && method != .trace
    }

    /// Whether a request with these headers, for `host` (the trusted proxy's
    /// `X-Forwarded-Host`, else `Host`), comes from another site.
    public func isCrossSite(_ fields: HTTPFields, host: String?) -> Bool {
        if let site = fields[.secFetchSite], site.lowercased() == "cross-site" { return true }
        let origins = fields[values: .origin]
        guard let sent = origins.first else { return false }
        guard origins.count == 1, let origin = Self.origin(sent) else { return true }
        if allowedOrigins.contains(origin) { return false }
        if let ownOrigin { return origin != ownOrigin }
        // Without `public_url` the scheme Gatehouse is reached by is not known for certain
        // (TLS usually ends in front of it): the host is compared, as routes compare hosts.
        guard let host, let schemeEnd = origin.range(of: "://") else { return true }
        return RouteTable.canonicalHost(String(origin[schemeEnd.upperBound...])) != RouteTable.canonicalHost(host)
    }

    /// The origin of an http(s) URL as browsers send it: `scheme://host[:port]`, lowercased,
    /// the scheme's default port dropped; `nil` for anything else (`null`, other schemes,
    /// user info, and a path unless `allowingPath`). WebSocket clients outside browsers may
    /// send `ws://` or `wss://`: read as `http://` and `https://`.
    public static func origin(_ text: String, allowingPath: Bool = false) -> String? {
        guard let components = URLComponents(string: text), var scheme = components.scheme?.lowercased() else { return nil }
        scheme = ["ws": "http", "wss": "https"][scheme] ?? scheme
        guard scheme == "http" || scheme == "https", let host = components.host?.lowercased(), !host.isEmpty,
            components.user == nil, components.password == nil, components.query == nil, components.fragment == nil,
            allowingPath || components.path.isEmpty
        else { return nil }
        let defaultPort = scheme == "https" ? 443 : 80
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        if let port = components.port, port != defaultPort { return "\(scheme)://\(hostPart):\(port)" }
        return "\(scheme)://\(hostPart)"
    }
}

extension HTTPField.Name {
    /// `Sec-Fetch-Site` (Fetch Metadata): `same-origin`, `same-site`, `cross-site` or `none`.
    public static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}
