/// Normalises request paths before routing (SPEC §2.3), so that a path reaches only the
/// route it belongs to: `/public/../admin` and `/public/%2e%2e/admin` are `/admin`.
public enum PathNormalizer {
    /// Why a path is refused (400).
    public enum Failure: Error, Sendable, Equatable {
        /// Not starting with `/`, or holding `\`, `;`, a control character, an encoded `/`, `\`
        /// or NUL, or a broken escape. Encoded slashes are refused rather than decoded: an
        /// upstream that decodes them would see other segments than the route table saw.
        /// A `;` starts a path parameter, which Tomcat, Jetty and Spring drop before routing
        /// (`/admin;x/secret` is their `/admin/secret`) while the route table would see a
        /// segment `admin;x`: refused, so no upstream reads a path the table did not route.
        case invalid
    }

    /// The normalised form of a raw path (no query): unreserved characters percent-decoded,
    /// other escapes upper-cased, dot segments resolved (never above the root), repeated
    /// slashes collapsed, a trailing slash kept.
    public static func normalize(_ raw: some StringProtocol) -> Result<String, Failure> {
        // Most paths are normal already: answer those without taking them apart.
        if isAlreadyNormal(raw.utf8) { return .success(String(raw)) }
        return normalizeSegments(Array(raw.utf8))
    }

    /// Whether `normalize` would return `raw` unchanged, by a conservative check: it starts
    /// with `/`, holds no `%`, `\`, `#`, `?`, `;`, space or control character, and no `//`
    /// or segment starting with `.`. Anything else takes the full normaliser.
    static func isAlreadyNormal(_ raw: some Collection<UInt8>) -> Bool {
        guard raw.first == UInt8(ascii: "/") else { return false }
        var previous: UInt8 = 0
        for byte in raw {
            switch byte {
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: "#"), UInt8(ascii: "?"), UInt8(ascii: ";"), 0..<0x21, 0x7f:
                return false
            default:
                if previous == UInt8(ascii: "/"), byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".") { return false }
                previous = byte
            }
        }
        return true
    }

    /// The full normaliser: segments, escapes and dot segments.
    static func normalizeSegments(_ bytes: [UInt8]) -> Result<String, Failure> {
        guard bytes.first == UInt8(ascii: "/") else { return .failure(.invalid) }
        var segments: [[UInt8]] = []
        var current: [UInt8] = []
        var trailingSlash = false
        var index = 0
        func finishSegment() {
            defer { current = [] }
            switch current {
            case [], [UInt8(ascii: ".")]:
                trailingSlash = true
            case [UInt8(ascii: "."), UInt8(ascii: ".")]:
                if !segments.isEmpty { segments.removeLast() }
                trailingSlash = true
            default:
                segments.append(current)
                trailingSlash = false
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "/"):
                if index > 0 { finishSegment() }
                trailingSlash = true
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    return .failure(.invalid)
                }
                let decoded = high << 4 | low
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") || decoded < 0x20 || decoded == 0x7f {
                    return .failure(.invalid)
                }
                if isUnreserved(decoded) {
                    current.append(decoded)
                } else {
                    current += [UInt8(ascii: "%"), upperHex(high), upperHex(low)]
                }
                index += 2
            case UInt8(ascii: "\\"), UInt8(ascii: "#"), UInt8(ascii: "?"), UInt8(ascii: ";"), 0..<0x21, 0x7f:
                return .failure(.invalid)
            default:
                current.append(byte)
            }
            index += 1
        }
        if !current.isEmpty || bytes.last != UInt8(ascii: "/") { finishSegment() }
        var path = "/" + segments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
        if trailingSlash, !segments.isEmpty { path += "/" }
        return .success(path)
    }

    /// RFC 3986 unreserved characters: letters, digits, `-`, `.`, `_`, `~`.
    public static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        FormURLEncoded.hexValue(byte)
    }

    static func upperHex(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }
}
