import Foundation
import GatehouseCore
import HTTPTypes

/// Header rewriting for forwarded requests and responses: pure functions, unit-tested
/// without sockets.
enum ProxyHeaders {
    /// RFC 9110 §7.6.1 connection-specific headers, never forwarded either way.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    /// Whether `name` is a spelling of one of `identity` (any case, `_` or `-`).
    static func isIdentityHeader(_ name: String, _ identity: IdentityHeaderNames) -> Bool {
        let folded = name.lowercased().replacingOccurrences(of: "_", with: "-")
        return folded == identity.userId.lowercased().replacingOccurrences(of: "_", with: "-")
            || folded == identity.email.lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// Removes hop-by-hop headers, including those the `Connection` header names.
    static func removingHopByHop(_ fields: HTTPFields) -> HTTPFields {
        let named = Set(fields[values: .connection].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        return HTTPFields(fields.filter { field in
            let name = field.name.canonicalName
            return !hopByHop.contains(name) && !named.contains(name)
        })
    }

    /// The request headers an upstream receives (SPEC §2.3).
    ///
    /// Security invariants enforced here: every client-sent identity header is dropped
    /// (before Gatehouse's own are added), and Gatehouse's session cookie never leaves.
    static func upstreamRequest(
        _ incoming: HTTPFields, identity: IdentityHeaderNames, user: User?, cookieName: String,
        client: ForwardingContext
    ) -> HTTPFields {
        var fields = HTTPFields()
        for field in removingHopByHop(incoming) {
            let name = field.name.canonicalName
            if isIdentityHeader(name, identity) { continue }
            if ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "forwarded"].contains(name) { continue }
            if name == "cookie" {
                if let kept = CookieHeader.removing(named: cookieName, from: field.value) { fields.append(HTTPField(name: .cookie, value: kept)) }
                continue
            }
            fields.append(field)
        }
        fields[.xForwardedFor] = client.forwardedFor
        fields[.xForwardedProto] = client.proto
        if let host = client.host { fields[.xForwardedHost] = host }
        fields[.xRequestId] = client.requestId
        if let user {
            fields[HTTPField.Name(identity.userId)!] = user.id
            fields[HTTPField.Name(identity.email)!] = user.email
        }
        return fields
    }

    /// The response headers the client receives from an upstream answer.
    static func clientResponse(_ upstream: HTTPFields, requestId: String) -> HTTPFields {
        var fields = removingHopByHop(upstream)
        fields[.xRequestId] = requestId
        return fields
    }
}

/// What Gatehouse tells an upstream about the client, with `X-Forwarded-*` believed only
/// from `trusted_proxies`.
struct ForwardingContext: Sendable {
    /// The `X-Forwarded-For` to send: appended to when the peer is trusted, else replaced.
    let forwardedFor: String
    /// `X-Forwarded-Proto`.
    let proto: String
    /// `X-Forwarded-Host`.
    let host: String?
    /// `X-Request-Id`: kept from a trusted peer when well-formed, else generated.
    let requestId: String

    init(peer: String, headers: HTTPFields, authority: String?, trustedProxies: [CIDR]) {
        let trusted = ClientAddress.isTrusted(peer, trustedProxies)
        let existing = headers[values: .xForwardedFor].joined(separator: ", ")
        forwardedFor = trusted && !existing.isEmpty ? "\(existing), \(peer)" : peer
        proto = trusted ? (headers[.xForwardedProto].flatMap { ["http", "https"].contains($0.lowercased()) ? $0.lowercased() : nil } ?? "http") : "http"
        host = (trusted ? headers[.xForwardedHost] : nil) ?? authority
        if trusted, let id = headers[.xRequestId], Self.isWellFormedRequestId(id) {
            requestId = id
        } else {
            requestId = Self.newRequestId()
        }
    }

    static func isWellFormedRequestId(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            PathNormalizer.isUnreserved(byte)
        }
    }

    static func newRequestId() -> String {
        var generator = SystemRandomNumberGenerator()
        return TokenHash.hex((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

extension HTTPField.Name {
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
    static let xForwardedMethod = HTTPField.Name("X-Forwarded-Method")!
    static let xForwardedUri = HTTPField.Name("X-Forwarded-Uri")!
    static let xOriginalURL = HTTPField.Name("X-Original-URL")!
    static let xRequestId = HTTPField.Name("X-Request-Id")!
}
