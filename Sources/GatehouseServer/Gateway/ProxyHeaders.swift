import Foundation
import GatehouseCore
import HTTPTypes
import NIOHTTP1

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
        _ incoming: HTTPFields, identity: IdentityHeaderNames, user: ForwardedIdentity?, cookieName: String,
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
            fields[HTTPField.Name(identity.userId)!] = user.userId
            fields[HTTPField.Name(identity.email)!] = user.email
        }
        return fields
    }

    /// `fields` as HTTP/1 headers for an upstream, with `Host` first; the framing of the
    /// forwarded body is the client library's.
    static func http1Headers(_ fields: HTTPFields, host: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 1)
        if let host { headers.add(name: "Host", value: host) }
        for field in fields where field.name != .contentLength { headers.add(name: field.name.rawName, value: field.value) }
        return headers
    }

    /// The response headers the client receives from an upstream answer.
    static func clientResponse(_ upstream: HTTPFields, requestId: String) -> HTTPFields {
        var fields = removingHopByHop(upstream)
        fields[.xRequestId] = requestId
        return fields
    }
}

/// Whose request is forwarded: the values of the identity headers.
struct ForwardedIdentity: Sendable, Equatable {
    let userId: String
    let email: String
}

/// The identity header names of the configuration, validated once, and the answer a verify
/// endpoint gives for a live session.
struct IdentityFields: Sendable {
    let userId: HTTPField.Name
    let email: HTTPField.Name

    init(_ names: IdentityHeaderNames) {
        // Configuration loading has validated both names as header field names.
        userId = HTTPField.Name(names.userId)!
        email = HTTPField.Name(names.email)!
    }

    /// `200` fields of `/auth/verify` and `/auth/forward`: the identity, never cached (I5).
    func verifyAnswer(_ user: ForwardedIdentity, reservingCapacity extra: Int = 0) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(3 + extra)
        fields[userId] = user.userId
        fields[email] = user.email
        fields[.cacheControl] = "no-store"
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

    /// 16 random bytes in hex, from two draws of the system generator (one system call each).
    static func newRequestId() -> String {
        var generator = SystemRandomNumberGenerator()
        let (high, low) = (generator.next(), generator.next())
        return TokenHash.hex((0..<16).map { index in UInt8(truncatingIfNeeded: (index < 8 ? high : low) >> (UInt64(index % 8) * 8)) })
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
