import Foundation

/// An upstream base URL, parsed once.
public struct UpstreamTarget: Sendable, Equatable, CustomStringConvertible {
    /// `http` or `https`.
    public let scheme: String
    /// Host name or address.
    public let host: String
    /// TCP port (the scheme's default when the URL names none).
    public let port: Int
    /// Path the forwarded path is appended to, without a trailing `/`.
    public let basePath: String
    /// `host:port`, the key of a connection pool.
    public let address: String
    /// Its name under `upstreams` (the label of its metrics); empty when not from a configuration.
    public internal(set) var name = ""

    /// Parses an `http://` or `https://` URL with a host; `nil` otherwise.
    public init?(_ url: String) {
        guard let components = URLComponents(string: url), let scheme = components.scheme, scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = components.port ?? (scheme == "https" ? 443 : 80)
        self.basePath = components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath
        self.address = "\(host):\(port)"
    }

    /// The same URL: the name is a label, not part of the target.
    public static func == (lhs: UpstreamTarget, rhs: UpstreamTarget) -> Bool {
        (lhs.scheme, lhs.host, lhs.port, lhs.basePath) == (rhs.scheme, rhs.host, rhs.port, rhs.basePath)
    }

    /// The base URL, with its port.
    public var description: String { "\(scheme)://\(host):\(port)\(basePath)" }

    /// The absolute URL of `path` and `query` on this upstream.
    public func url(path: String, query: Substring) -> String {
        "\(scheme)://\(host):\(port)\(basePath)\(path)\(query)"
    }
}
