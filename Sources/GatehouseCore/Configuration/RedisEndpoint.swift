import Foundation

/// Where Redis is and how to log in to it, parsed from `redis.url`.
///
/// Its `description` and `debugDescription` are ``redacted``: an endpoint interpolated into a
/// log line, an error or a test failure never shows the password.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// TCP host and port, or a Unix socket path.
    public enum Address: Sendable, Equatable {
        /// `host:port`.
        case tcp(host: String, port: Int)
        /// A Unix domain socket.
        case unix(path: String)
    }

    /// Where to connect.
    public var address: Address
    /// ACL user for `AUTH user pass` (Redis 6+); `nil` for `AUTH pass`.
    public var username: String?
    /// Password for `AUTH`; `nil` for none.
    public var password: String?
    /// Database number for `SELECT`.
    public var database: Int

    /// Parses `redis://[user:pass@]host[:port][/db]` or `unix:/path[?db=N]`; `nil` otherwise.
    public init?(_ url: String) {
        if url.hasPrefix("unix:") {
            var path = String(url.dropFirst("unix:".count))
            var database = 0
            if let question = path.firstIndex(of: "?") {
                let query = path[path.index(after: question)...]
                guard query.hasPrefix("db="), let number = Int(query.dropFirst(3)), number >= 0 else { return nil }
                database = number
                path = String(path[..<question])
            }
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard path.hasPrefix("/") else { return nil }
            self.init(address: .unix(path: path), username: nil, password: nil, database: database)
            return
        }
        guard let components = URLComponents(string: url), components.scheme == "redis",
            let host = components.host, !host.isEmpty, components.query == nil, components.fragment == nil
        else { return nil }
        let port = components.port ?? 6379
        guard (1...65535).contains(port) else { return nil }
        let databaseText = components.path.drop { $0 == "/" }
        guard databaseText.isEmpty || Int(databaseText) != nil else { return nil }
        let user = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        let password = components.password.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        // `redis://secret@host` means a password alone, as redis-cli reads it.
        let (username, secret) = password == nil ? (nil, user) : (user, password)
        self.init(address: .tcp(host: host, port: port), username: username, password: secret, database: Int(databaseText) ?? 0)
    }

    /// Creates an endpoint.
    public init(address: Address, username: String?, password: String?, database: Int) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// The URL with any password replaced by `***`, for logs.
    public var redacted: String {
        switch address {
        case .tcp(let host, let port):
            let credentials = password == nil ? "" : "\(username ?? "")\(username == nil ? "" : ":")***@"
            return "redis://\(credentials)\(host):\(port)/\(database)"
        case .unix(let path):
            return "unix:\(path)?db=\(database)"
        }
    }

    /// ``redacted``.
    public var description: String { redacted }

    /// ``redacted``.
    public var debugDescription: String { redacted }
}
