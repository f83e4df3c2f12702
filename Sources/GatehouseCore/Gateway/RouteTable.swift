/// The route table of SPEC §2.3: the longest matching prefix wins, a route with a `host`
/// beats one without for the same prefix. Matching uses the normalised path only; the
/// query never takes part.
public struct RouteTable: Sendable {
    /// Routes, most specific first, their hosts canonical (``canonicalHost(_:)``).
    public let routes: [RouteConfiguration]
    /// Whether any route names a host (else the request's host is never looked at).
    private let hasHostRoutes: Bool
    /// Whether prefixes match ignoring ASCII case (`proxy.case_insensitive_paths`).
    public let caseInsensitive: Bool

    /// Orders `routes` for matching.
    public init(_ routes: [RouteConfiguration], caseInsensitive: Bool = false) {
        self.routes = routes.map { route in
            var route = route
            route.host = route.host.map(Self.canonicalHost)
            return route
        }.sorted { left, right in
            if left.prefix.count != right.prefix.count { return left.prefix.count > right.prefix.count }
            return (left.host != nil) && (right.host == nil)
        }
        self.hasHostRoutes = routes.contains { $0.host != nil }
        self.caseInsensitive = caseInsensitive
    }

    /// The route for a request to `host` (any case, a trailing dot and the port ignored) at
    /// the normalised `path`.
    public func match(host: String?, path: String) -> RouteConfiguration? {
        let requestHost = hasHostRoutes ? host.map(Self.canonicalHost) : nil
        return routes.first { route in
            if let routeHost = route.host, routeHost != requestHost { return false }
            return Self.path(path, isUnder: route.prefix, caseInsensitive: caseInsensitive)
        }
    }

    /// Whether `path` lies under `prefix` on a segment boundary: `/api` covers `/api` and
    /// `/api/x` but not `/apix`; `/public/` covers `/public` and `/public/x`. With
    /// `caseInsensitive`, ASCII letters match in either case (`/API/x` is under `/api`).
    public static func path(_ path: String, isUnder prefix: String, caseInsensitive: Bool = false) -> Bool {
        if prefix == "/" { return true }
        let bare = prefix.utf8.last == UInt8(ascii: "/") ? prefix.utf8.dropLast() : prefix.utf8[...]
        if caseInsensitive {
            guard path.utf8.count >= bare.count, zip(path.utf8, bare).allSatisfy({ lowercased($0) == lowercased($1) }) else { return false }
        } else {
            guard path.utf8.starts(with: bare) else { return false }
        }
        let rest = path.utf8.dropFirst(bare.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "/")
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    /// A host as routes compare it: lowercase, without port, without the trailing dot of a
    /// fully qualified name (`Admin.Example.com.:443` is `admin.example.com`).
    public static func canonicalHost(_ host: String) -> String {
        var name = hostWithoutPort(host).lowercased()
        if name.hasSuffix("."), !name.hasPrefix("[") { name.removeLast() }
        return name
    }

    /// The path to forward: the prefix removed when the route says so, never empty.
    public static func forwardedPath(_ path: String, route: RouteConfiguration) -> String {
        guard route.stripPrefix, route.prefix != "/" else { return path }
        // Bytes, as in matching, so that the two agree on every path (graphemes do not).
        let bare = route.prefix.utf8.last == UInt8(ascii: "/") ? route.prefix.utf8.dropLast() : route.prefix.utf8[...]
        let rest = Substring(path.utf8.dropFirst(bare.count))
        return rest.utf8.first == UInt8(ascii: "/") ? String(rest) : "/" + rest
    }

    static func hostWithoutPort(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[...close]) }
        return String(host.split(separator: ":", maxSplits: 1).first ?? "")
    }
}
