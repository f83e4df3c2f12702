import HTTPTypes
import Synchronization
import NIOHTTP1

/// Header rewriting for forwarded requests and responses: pure functions, unit-tested
/// without sockets. They run for every proxied request, so they compare bytes and build no
/// sets or Foundation strings.
public enum ProxyHeaders {
    /// Whether `canonicalName` (lowercase) is an RFC 9110 §7.6.1 connection-specific header,
    /// never forwarded either way.
    public static func isHopByHop(_ canonicalName: String) -> Bool {
        switch canonicalName {
        case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
            "transfer-encoding", "upgrade":
            return true
        default:
            return false
        }
    }

    /// The header names a `Connection` header lists (lowercase), which are hop-by-hop too.
    public static func connectionOptions(_ values: [String]) -> [String] {
        var names: [String] = []
        for value in values {
            for token in value.utf8.split(separator: UInt8(ascii: ",")) {
                let trimmed = token.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
                let end = trimmed.lastIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
                guard let end else { continue }
                names.append(String(decoding: trimmed[...end], as: UTF8.self).lowercased())
            }
        }
        return names
    }

    /// Removes hop-by-hop headers, including those the `Connection` header names.
    public static func removingHopByHop(_ fields: HTTPFields) -> HTTPFields {
        let named = connectionOptions(fields[values: .connection])
        var kept = HTTPFields()
        kept.reserveCapacity(fields.count)
        for field in fields {
            let name = field.name.canonicalName
            if !isHopByHop(name), !named.contains(name) { kept.append(field) }
        }
        return kept
    }

    /// Whether `canonicalName` is one the forwarding context sets, so the client's copy goes.
    public static func isForwardingHeader(_ canonicalName: String) -> Bool {
        switch canonicalName {
        case "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "forwarded": return true
        default: return false
        }
    }

    /// Headers that upstream frameworks route on or take as the client's address, folded as
    /// ``foldedName(_:)`` folds them: `X-Original-URL` and `X-Rewrite-URL` (IIS, Symfony,
    /// Laravel, Zend route on them), `X-Real-IP`, `True-Client-IP`, `X-Client-IP`,
    /// `X-Cluster-Client-IP`, `X-Forwarded-Port`, `-Prefix`, `-Uri`, `-Path`, `-Method`,
    /// `-Server`, `-Scheme`, `-Ssl`, `Front-End-Https`, `X-Url-Scheme`, `X-HTTP-Method-Override`
    /// and `X-Method-Override`, and the forwarding headers Gatehouse sets itself. A client's
    /// copies are removed unless the peer is a trusted proxy (whose copies pass untouched).
    static let trustedOnly: Set<String> = [
        "xoriginalurl", "xrewriteurl", "xrealip", "trueclientip", "xclientip", "xclusterclientip", "xforwardedport", "xforwardedprefix",
        "xforwardeduri", "xforwardedpath", "xforwardedmethod", "xforwardedserver", "xforwardedscheme", "xforwardedssl", "frontendhttps",
        "xurlscheme", "xhttpmethodoverride", "xmethodoverride", "forwarded",
    ]

    /// Whether a client's `canonicalName` is one only a trusted proxy may send.
    public static func isTrustedOnly(_ canonicalName: String) -> Bool {
        // Cheap rejection first: every listed name starts with x, t, f.
        guard let first = canonicalName.utf8.first, first == UInt8(ascii: "x") || first == UInt8(ascii: "t") || first == UInt8(ascii: "f") else { return false }
        return trustedOnly.contains(foldedName(canonicalName))
    }

    /// A header name as the upstream stacks that fold names see it: lowercase letters and
    /// digits only. CGI, WSGI, Rack and PHP turn `-`, `.` and other punctuation into `_` and
    /// upper-case the name; Node and most servers lower-case it. Two names with the same
    /// folded form may reach an application as one.
    public static func foldedName(_ name: String) -> String {
        String(decoding: name.utf8.compactMap(foldedByte), as: UTF8.self)
    }

    static func foldedByte(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): byte
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte + 32
        default: nil
        }
    }

    /// The request headers an upstream receives (SPEC §2.3), as HTTP/1 headers with `Host`
    /// first when given. `Content-Length` is left to the client library, which frames the
    /// forwarded body.
    ///
    /// Security invariants enforced here: every client-sent identity header is dropped
    /// (before Gatehouse's own are added), in any spelling an upstream stack folds to the
    /// same name; headers upstreams route or trust on pass only from trusted proxies; and
    /// Gatehouse's session cookie never leaves.
    public static func upstreamRequest(
        _ incoming: HTTPFields, host: String?, identity: IdentityFields, user: Identity?, cookieName: String, client: ForwardingContext
    ) -> HTTPHeaders {
        let named = connectionOptions(incoming[values: .connection])
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 7)
        if let host { headers.add(name: "Host", value: host) }
        for field in incoming {
            let name = field.name.canonicalName
            // `Host` is the authority's alone (a second one is refused before this).
            if isHopByHop(name) || named.contains(name) || identity.isSpelling(name) || isForwardingHeader(name) || field.name == .contentLength
                || field.name == .host || (!client.trusted && isTrustedOnly(name))
            {
                continue
            }
            if field.name == .cookie {
                if let kept = CookieHeader.removing(named: cookieName, from: field.value) { headers.add(name: "Cookie", value: kept) }
                continue
            }
            headers.add(name: field.name.rawName, value: field.value)
        }
        headers.add(name: "X-Forwarded-For", value: client.forwardedFor)
        headers.add(name: "X-Forwarded-Proto", value: client.proto)
        if let host = client.host { headers.add(name: "X-Forwarded-Host", value: host) }
        headers.add(name: "X-Request-Id", value: client.requestId)
        if let user {
            headers.add(name: identity.userId.rawName, value: user.userId)
            headers.add(name: identity.email.rawName, value: user.email)
        }
        return headers
    }

    /// The response headers the client receives from an upstream's HTTP/1 answer: hop-by-hop
    /// headers (and those the upstream's `Connection` names) dropped, `X-Request-Id` set, and
    /// `Date` set to `date` when given and the upstream sent none. HTTP/1 headers both ways:
    /// the upstream's names were validated by the HTTP/1 decoder that parsed them.
    public static func clientResponse(_ upstream: HTTPHeaders, requestId: String, date: String? = nil) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(upstream.count + 2)
        var connection: [String] = []
        var dated = false
        for (name, value) in upstream {
            let canonical = name.lowercased()
            if canonical == "connection" { connection.append(value) }
            if canonical == "date" { dated = true }
            if isHopByHop(canonical) || canonical == "x-request-id" { continue }
            headers.add(name: name, value: value)
        }
        // Rare: headers the upstream's `Connection` names are hop-by-hop too.
        for name in connectionOptions(connection) where !isHopByHop(name) { headers.remove(name: name) }
        headers.add(name: "X-Request-Id", value: requestId)
        if !dated, let date { headers.add(name: "Date", value: date) }
        return headers
    }
}


/// The identity header names of the configuration, validated once, and the answer a verify
/// endpoint gives for a live session.
public struct IdentityFields: Sendable {
    public let userId: HTTPField.Name
    public let email: HTTPField.Name
    /// Both names folded (``ProxyHeaders/foldedName(_:)``), for ``isSpelling(_:)``.
    private let folded: [[UInt8]]

    public init(_ names: IdentityHeaderNames) {
        // Configuration loading has validated both names as header field names.
        userId = HTTPField.Name(names.userId)!
        email = HTTPField.Name(names.email)!
        folded = [userId, email].map { Array(ProxyHeaders.foldedName($0.canonicalName).utf8) }
    }

    /// Whether `canonicalName` is a spelling of one of the identity headers: any case, with
    /// `-`, `_`, `.` or any other punctuation anywhere (`X_User_Id`, `x.user.id`, `XUserId`…),
    /// since some upstream stack reads each of those as the header itself.
    public func isSpelling(_ canonicalName: String) -> Bool {
        folded.contains { name in name.elementsEqual(canonicalName.utf8.lazy.compactMap(ProxyHeaders.foldedByte)) }
    }

    /// `200` fields of `/auth/verify` and `/auth/forward`: the identity, never cached (I5).
    public func verifyAnswer(_ user: Identity) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(3)
        fields[userId] = user.userId
        fields[email] = user.email
        fields[.cacheControl] = "no-store"
        return fields
    }
}

/// What Gatehouse knows of a request's client, computed once per request from the
/// connection's facts: `X-Forwarded-*` believed only from `trusted_proxies`, and the
/// request's one id (every log line and the upstream see the same).
public struct ForwardingContext: Sendable {
    /// The TCP peer.
    public let peer: String
    /// Whether the peer is a trusted proxy.
    public let trusted: Bool
    /// The `X-Forwarded-For` to send: appended to when the peer is trusted, else replaced.
    public let forwardedFor: String
    /// `X-Forwarded-Proto`: the trusted proxy's `http` or `https` (any case), else `http`.
    public let proto: String
    /// `X-Forwarded-Host`.
    public let host: String?
    /// `X-Request-Id`: kept from a trusted peer when well-formed, else generated.
    public let requestId: String

    /// The context of a request on a connection whose facts are known; `newId` makes the
    /// request id when the peer's is not to be kept.
    public init(connection: ConnectionFacts, headers: HTTPFields, authority: String?, newId: () -> String = ForwardingContext.newRequestId) {
        let trusted = connection.trusted
        let peer = connection.peer
        self.peer = peer
        self.trusted = trusted
        let existing = trusted ? headers[values: .xForwardedFor].joined(separator: ", ") : ""
        forwardedFor = existing.isEmpty ? peer : "\(existing), \(peer)"
        proto = trusted ? (headers[.xForwardedProto].flatMap { ["http", "https"].contains($0.lowercased()) ? $0.lowercased() : nil } ?? "http") : "http"
        host = (trusted ? headers[.xForwardedHost] : nil) ?? authority
        if trusted, let id = headers[.xRequestId], Self.isWellFormedRequestId(id) {
            requestId = id
        } else {
            requestId = newId()
        }
    }

    public static func isWellFormedRequestId(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            PathNormalizer.isUnreserved(byte)
        }
    }

    /// A new request id from the process's sequence (see ``RequestIdSequence``).
    public static func newRequestId() -> String {
        RequestIdSequence.shared.withLock { $0.next() }
    }
}

/// Request ids without a system call each: a random 64-bit prefix drawn once and a counter
/// from a random start, as 32 hex digits. Unique, not secret: request ids are for
/// correlating logs. The one generator: a connection of the fast path keeps its own
/// sequence, everything else draws from ``shared``.
public struct RequestIdSequence: Sendable {
    /// The process's sequence, for requests outside the fast path.
    public static let shared = Mutex(RequestIdSequence())

    private let prefix: UInt64
    private var counter: UInt64

    public init() {
        var generator = SystemRandomNumberGenerator()
        prefix = generator.next()
        counter = generator.next()
    }

    public mutating func next() -> String {
        counter &+= 1
        return Self.hex(prefix, counter)
    }

    public static func hex(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            for (offset, value) in [(0, high), (16, low)] {
                for nibble in 0..<16 {
                    let digit = UInt8(truncatingIfNeeded: value >> UInt64(60 - nibble * 4)) & 0x0f
                    buffer[offset + nibble] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                }
            }
            return 32
        }
    }
}

extension HTTPField.Name {
    /// A `Host` field left among the fields: the request had more than one.
    public static let host = HTTPField.Name("Host")!
    public static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    public static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    public static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
    public static let xForwardedMethod = HTTPField.Name("X-Forwarded-Method")!
    public static let xForwardedUri = HTTPField.Name("X-Forwarded-Uri")!
    public static let xOriginalURL = HTTPField.Name("X-Original-URL")!
    /// The original request's method, as the nginx recipe sends it to `/auth/verify`.
    public static let xOriginalMethod = HTTPField.Name("X-Original-Method")!
    public static let xRequestId = HTTPField.Name("X-Request-Id")!
}
