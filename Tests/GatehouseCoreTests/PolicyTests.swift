import Foundation
import Testing

@testable import GatehouseCore

@Suite("Credential policy")
struct CredentialPolicyTests {
    @Test(
        "emails are trimmed and lowercased",
        arguments: [
            (" Alice@Example.COM ", "alice@example.com"), ("bob+tag@sub.example.org", "bob+tag@sub.example.org"),
            ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
        ]
    )
    func validEmails(raw: String, expected: String) {
        #expect(CredentialPolicy.normalizedEmail(raw) == expected)
    }

    @Test(
        "invalid emails are rejected",
        arguments: [
            "", "alice", "alice@", "@example.com", "alice@example", "a b@example.com", "alice@@example.com",
            "alice@exa mple.com", "alice@-example.com", "alice@example..com", ".alice@example.com", "alice@example.123",
            "alice\n@example.com", "ålice@example.com", String(repeating: "a", count: 65) + "@example.com",
            "a@" + String(repeating: "b", count: 250) + ".com",
        ]
    )
    func invalidEmails(raw: String) {
        #expect(CredentialPolicy.normalizedEmail(raw) == nil)
    }

    @Test("passwords of 8 and 128 characters pass, 7 and 129 fail, counting code points after NFKC")
    func passwordLengths() {
        #expect(CredentialPolicy.isAcceptablePassword(String(repeating: "a", count: 8)))
        #expect(CredentialPolicy.isAcceptablePassword(String(repeating: "a", count: 128)))
        #expect(!CredentialPolicy.isAcceptablePassword(String(repeating: "a", count: 7)))
        #expect(!CredentialPolicy.isAcceptablePassword(String(repeating: "a", count: 129)))
        #expect(CredentialPolicy.isAcceptablePassword(String(repeating: "é", count: 8)))
        #expect(CredentialPolicy.isAcceptablePassword(String(repeating: "🔐", count: 128)))
        #expect(!CredentialPolicy.isAcceptablePassword(String(repeating: "🔐", count: 129)))
        // Counted in the NFKC form that is hashed: a ligature as its letters, a combining mark with its letter.
        #expect(CredentialPolicy.passwordLength("\u{FB03}") == 3)
        #expect(CredentialPolicy.passwordLength("e\u{301}") == 1)
        #expect(CredentialPolicy.isAcceptablePassword(String(repeating: "\u{FB03}", count: 3)))
        #expect(!CredentialPolicy.isAcceptablePassword(String(repeating: "e\u{301}", count: 7)))
    }
}

@Suite("Session tokens (I1)")
struct SessionTokenTests {
    @Test("a token is 32 random bytes in unpadded base64url, hashed with SHA-256")
    func shape() throws {
        let token = SessionToken.generate()
        #expect(token.cookieValue.count == 43)
        #expect(Base64URL.decode(token.cookieValue)?.count == 32)
        #expect(token.hash.hex.count == 64)
        #expect(token.hash.hex != token.cookieValue)
        #expect(SessionToken.generate().cookieValue != token.cookieValue)
        // SHA-256 of 32 zero bytes.
        let zero = try #require(SessionToken(cookieValue: String(repeating: "A", count: 43)))
        #expect(zero.hash.hex == "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925")
    }

    @Test(
        "cookie values that are not exactly a token are refused",
        arguments: [
            "", "abc", String(repeating: "A", count: 42), String(repeating: "A", count: 44), String(repeating: "A", count: 42) + "=",
            String(repeating: "A", count: 42) + "+", String(repeating: "A", count: 42) + "B", "../../etc/passwd" + String(repeating: "A", count: 27),
        ]
    )
    func garbage(value: String) {
        #expect(SessionToken(cookieValue: value) == nil)
        #expect(SessionToken.hash(ofCookieValue: value) == nil)
    }

    @Test("the hot path's one-step hash of a cookie value is the token's hash")
    func oneStepHash() throws {
        for _ in 0..<200 {
            let token = SessionToken.generate()
            #expect(SessionToken.hash(ofCookieValue: token.cookieValue) == token.hash)
            #expect(SessionToken.hash(ofCookieValue: token.cookieValue[...]) == token.hash)
        }
        let zero = String(repeating: "A", count: 43)
        #expect(SessionToken.hash(ofCookieValue: zero)?.hex == "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925")
    }
}

@Suite("Base64url")
struct Base64URLTests {
    @Test("encoding matches Foundation's base64 with the URL alphabet, and decoding inverts it, for every length up to 96")
    func roundTrip() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...96 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let reference = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(bytes) == reference)
            #expect(Base64URL.decode(reference) == bytes)
        }
        #expect(Base64URL.decode("AB") == nil)
        #expect(Base64URL.decode("AA") == [0])
        #expect(Base64URL.decode("A") == nil)
        #expect(Base64URL.decode("AA==") == nil)
        #expect(Base64URL.decode("A+") == nil)
    }
}

@Suite("Cookies")
struct CookieHeaderTests {
    @Test("values of one cookie are found among others, in order")
    func parse() {
        let values = CookieHeader.values(named: "gatehouse_session", in: ["a=1; gatehouse_session=x;b=2", "gatehouse_session=\"y\"", "gatehouse_sessionx=z"])
        #expect(values == ["x", "y"])
    }

    @Test("only the first few values of a cookie are considered, however many a request carries")
    func bounded() {
        let many = (0..<1000).map { "gatehouse_session=v\($0)" }
        let oneHeader = CookieHeader.values(named: "gatehouse_session", in: [many.joined(separator: "; ")])
        let manyHeaders = CookieHeader.values(named: "gatehouse_session", in: many)
        let first = (0..<CookieHeader.sessionCookiesConsidered).map { Substring("v\($0)") }
        #expect(oneHeader == first)
        #expect(manyHeaders == first)
    }

    @Test("the session cookie carries HttpOnly, SameSite=Lax, Path=/, Secure and Max-Age")
    func attributes() {
        let secure = CookieHeader.sessionCookie(CookieConfiguration(), value: "v", maxAge: .seconds(86400))
        // Secure, host-only, Path=/: the __Host- prefix, which browsers accept only on such a cookie.
        #expect(secure == "__Host-gatehouse_session=v; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax; Secure")
        #expect(CookieConfiguration(name: "__Host-s").effectiveName == "__Host-s")
        #expect(CookieConfiguration(name: "s", secure: true, domain: "example.com").effectiveName == "s")
        #expect(CookieConfiguration(name: "s", secure: false).effectiveName == "s")
        let plain = CookieHeader.clearingCookie(CookieConfiguration(name: "s", secure: false, domain: "example.com"))
        #expect(plain == "s=; Max-Age=0; Path=/; Domain=example.com; HttpOnly; SameSite=Lax")
    }

    @Test(
        "cookie pairs are read with spaces and tabs around them, empty pieces, bare words and look-alike names",
        arguments: [
            ("s=1", ["1"]), (" \t s=1 \t", ["1"]), ("s =1", ["1"]), ("s= 1", [" 1"]), ("a=1;;s=2;", ["2"]), ("s", []),
            ("s=", [""]), ("s=\"\"", [""]), ("s=\"", ["\""]), ("ss=1; s=2; s=3", ["2", "3"]), ("S=1", []), ("x=s=1", []),
            ("s=a=b", ["a=b"]), ("é=1; s=ü", ["ü"]),
        ] as [(String, [Substring])]
    )
    func pairs(header: String, expected: [Substring]) {
        #expect(CookieHeader.values(named: "s", in: [header]) == expected)
    }

    @Test("removing a cookie keeps the others")
    func removing() {
        #expect(CookieHeader.removing(named: "s", from: "a=1; s=2; b=3") == "a=1; b=3")
        #expect(CookieHeader.removing(named: "s", from: "s=2") == nil)
        #expect(CookieHeader.removing(named: "s", from: " s=2 ;s=3;\ts = 4") == nil)
        #expect(CookieHeader.removing(named: "s", from: "a=1;;s=2;b;c=é;") == "a=1; b; c=é")
        #expect(CookieHeader.removing(named: "s", from: "ss=1; s") == "ss=1")
    }
}

@Suite("Networks and client addresses")
struct ClientAddressTests {
    @Test("CIDR membership for IPv4, IPv6 and IPv4-mapped addresses")
    func cidr() throws {
        let v4 = try #require(CIDR("10.0.0.0/8"))
        #expect(v4.contains("10.1.2.3"))
        #expect(!v4.contains("11.0.0.1"))
        #expect(v4.contains("::ffff:10.9.9.9"))
        let v6 = try #require(CIDR("fd00::/8"))
        #expect(v6.contains("fd12:3456::1"))
        #expect(!v6.contains("fe80::1"))
        #expect(CIDR("::1")?.contains("::1") == true)
        #expect(CIDR("300.0.0.1") == nil)
        #expect(CIDR("10.0.0.0/8/8") == nil)
    }

    @Test("X-Forwarded-For is believed only from trusted proxies, right-most untrusted hop")
    func forwardedFor() throws {
        let trusted = [try #require(CIDR("127.0.0.1"))]
        #expect(ClientAddress.resolve(peer: "203.0.113.9", forwardedFor: ["1.2.3.4"], trustedProxies: trusted) == "203.0.113.9")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["6.6.6.6, 1.2.3.4"], trustedProxies: trusted) == "1.2.3.4")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["garbage"], trustedProxies: trusted) == "127.0.0.1")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: [], trustedProxies: trusted) == "127.0.0.1")
    }
}

@Suite("Encodings")
struct EncodingTests {
    @Test("JSON strings are escaped, key order is fixed")
    func json() {
        var object = JSONText()
        object.add("a", "q\"\\\n\u{1}<")
        object.add("b", true)
        object.add("c", ["z": "1", "y": "2"])
        #expect(object.string == #"{"a":"q\"\\\n\u0001\u003c","b":true,"c":{"y":"2","z":"1"}}"#)
    }

    @Test("form bodies decode + and %XX, and refuse broken escapes")
    func form() {
        #expect(FormURLEncoded.parse("email=a%40b.c&password=p+w%C3%A9&email=ignored") == ["email": "a@b.c", "password": "p wé"])
        #expect(FormURLEncoded.parse("a=%zz") == nil)
        #expect(FormURLEncoded.parse("a=%C3") == nil)
        #expect(FormURLEncoded.parse("") == [:])
    }

    @Test("user JSON matches the API's user object")
    func userJSON() {
        let user = User(id: "u", email: "a@b.c", createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(user.json.string == #"{"id":"u","email":"a@b.c","created_at":"2023-11-14T22:13:20Z","email_verified":false,"mfa_enabled":false}"#)
    }
}
