import Foundation

/// Decides whether a post-login redirect target (`rd`) is safe (SPEC §2.3).
///
/// Accepted: a relative path starting with a single `/`, or an absolute `http(s)` URL whose
/// host is allowed. Refused, whatever their encoding: protocol-relative (`//x`, `/\x`),
/// backslashes, whitespace and control characters, userinfo (`https://good@evil`),
/// other schemes (`javascript:`), `https:evil.com`, and percent-encoding in the authority.
/// A browser resolving an accepted target always lands on this origin or an allowed host.
public struct RedirectValidator: Sendable {
    /// Allowed hosts: `example.com` (default ports), `example.com:8443`, `example.com:*`,
    /// or `.example.com` for the domain and its subdomains.
    public let allowedHosts: [String]

    /// Creates a validator.
    public init(allowedHosts: [String]) {
        self.allowedHosts = allowedHosts.map { $0.lowercased() }
    }

    /// `target` if it is safe, else `nil` (callers fall back to `/`).
    public func validate(_ target: String) -> String? {
        guard !target.isEmpty, target.utf8.count <= 2048 else { return nil }
        // The target goes into a Location header: nothing below 0x21, no DEL, no backslash.
        if target.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f || $0 == "\\" }) { return nil }
        // Look through every layer of percent-encoding: a target whose scheme-and-authority
        // part decodes to something dangerous is refused even if a browser would see only
        // the outer layer (browsers drop tabs and newlines and read `\` as `/`).
        var layers = [target]
        while layers.count < 4, let decoded = layers.last!.removingPercentEncoding, decoded != layers.last! {
            layers.append(decoded)
        }
        for layer in layers {
            let head = layer.prefix { $0 != "?" && $0 != "#" }
            if head.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f || $0 == "\\" || $0.properties.isWhitespace }) {
                return nil
            }
            if layer.hasPrefix("//") { return nil }
        }
        if target.hasPrefix("/") { return target }
        return isAllowedAbsolute(target) ? target : nil
    }

    func isAllowedAbsolute(_ target: String) -> Bool {
        guard let schemeEnd = target.range(of: "://") else { return false }
        let scheme = target[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return false }
        let rest = target[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains("%"),
            authority.unicodeScalars.allSatisfy({ $0.isASCII })
        else { return false }
        var host = Substring(authority)
        var port: Substring?
        if let colon = authority.lastIndex(of: ":"), !authority.hasPrefix("[") || authority[..<colon].hasSuffix("]") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
            guard let portText = port, !portText.isEmpty, portText.allSatisfy(\.isNumber), Int(portText).map({ (1...65535).contains($0) }) == true else {
                return false
            }
        }
        var normalizedHost = host.lowercased()
        if normalizedHost.hasSuffix(".") { normalizedHost.removeLast() }
        guard !normalizedHost.isEmpty else { return false }
        let defaultPort = scheme == "https" ? "443" : "80"
        return allowedHosts.contains { entry in
            let (entryHost, entryPort) = Self.split(entry)
            let hostMatches = entryHost.hasPrefix(".")
                ? normalizedHost == entryHost.dropFirst() || normalizedHost.hasSuffix(entryHost)
                : normalizedHost == entryHost
            guard hostMatches else { return false }
            switch entryPort {
            case "*": return true
            case nil: return port == nil || port.map(String.init) == defaultPort
            case let required?: return port.map(String.init) == required
            }
        }
    }

    static func split(_ entry: String) -> (host: String, port: String?) {
        guard let colon = entry.lastIndex(of: ":"), !entry.hasSuffix("]") else { return (entry, nil) }
        return (String(entry[..<colon]), String(entry[entry.index(after: colon)...]))
    }
}
