import Crypto
import Foundation
import GatehouseCore
import GatehouseTestSupport
import Testing

@testable import GatehouseStore

@Suite("TOTP codes")
struct TOTPAuthenticatorTests {
    static let rfcSecret = TOTPSecret(bytes: Array("12345678901234567890".utf8))!
    /// A fixed instant in the middle of step 56_666_666.
    static let now = Date(timeIntervalSince1970: 1_699_999_995)

    @Test("RFC 6238 Appendix B SHA-1 vectors come out of the HummingbirdOTP path")
    func rfc6238() {
        let authenticator = TOTPAuthenticator(secret: Self.rfcSecret, digits: 8)
        let vectors: [(TimeInterval, String)] = [
            (59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
        ]
        for (seconds, code) in vectors {
            #expect(authenticator.code(at: Date(timeIntervalSince1970: seconds)) == code, "T = \(seconds)")
        }
    }

    @Test("RFC 4226 Appendix D HOTP vectors are the codes of steps 0–9")
    func rfc4226() {
        let authenticator = TOTPAuthenticator(secret: Self.rfcSecret)
        let codes = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
        for (counter, code) in codes.enumerated() {
            #expect(authenticator.code(forStep: Int64(counter)) == code)
        }
    }

    @Test("a generated secret is 25 random ASCII bytes shown as 40 base32 characters")
    func generatedSecret() {
        let first = TOTPSecret.generate(), second = TOTPSecret.generate()
        #expect(first.bytes.count == 25 && first.bytes.allSatisfy { $0 < 0x80 })
        #expect(first.base32.count == 40 && first.base32.allSatisfy { "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".contains($0) })
        #expect(first.bytes != second.bytes)
        #expect(TOTPSecret(bytes: [0xFF, 0xFE]) == nil)
        #expect(TOTPSecret(bytes: []) == nil)
    }

    @Test("base32 is RFC 4648's, without padding")
    func base32() {
        let vectors = ["": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI"]
        for (text, encoded) in vectors {
            #expect(Base32.encode(Array(text.utf8)) == encoded)
        }
    }

    @Test("a code pyotp computes from the base32 secret shown to the user is accepted")
    func pyotpCode() throws {
        let secret = TOTPSecret.generate()
        let authenticator = TOTPAuthenticator(secret: secret)
        for offset in [-30.0, 0, 30] {
            let at = Self.now.timeIntervalSince1970 + offset
            let code = try runPython("import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))", arguments: [secret.base32, String(Int(at))])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(code == authenticator.code(at: Date(timeIntervalSince1970: at)))
            #expect(authenticator.verify(code: code, at: Self.now, after: nil) == TOTPAuthenticator.timeStep(at: Date(timeIntervalSince1970: at)))
        }
    }

    @Test("pyotp parses the otpauth URI back to the same secret, issuer, account and parameters")
    func pyotpParsesURI() throws {
        let secret = TOTPSecret.generate()
        let uri = TOTPAuthenticator(secret: secret).otpauthURI(issuer: "Gate & House: Ünï?#", account: "alice+mfa@example.com")
        #expect(uri.hasPrefix("otpauth://totp/Gate%20%26%20House%3A%20%C3%9Cn%C3%AF%3F%23:alice%2Bmfa%40example.com?secret=\(secret.base32)&issuer=Gate%20%26"))
        let parsed = try runPython(
            """
            import pyotp, sys
            otp = pyotp.parse_uri(sys.argv[1])
            print(otp.secret); print(otp.issuer); print(otp.name); print(otp.digits); print(otp.interval); print(otp.digest().name)
            """,
            arguments: [uri]
        )
        #expect(parsed.split(separator: "\n").map(String.init) == [secret.base32, "Gate & House: Ünï?#", "alice+mfa@example.com", "6", "30", "sha1"])
    }

    @Test("codes of one step either side are accepted, two steps away refused")
    func clockSkew() throws {
        let authenticator = TOTPAuthenticator(secret: TOTPSecret.generate())
        let step = try #require(TOTPAuthenticator.timeStep(at: Self.now))
        for offset: Int64 in [-1, 0, 1] {
            #expect(authenticator.verify(code: authenticator.code(forStep: step + offset), at: Self.now, after: nil) == step + offset)
        }
        for offset: Int64 in [-2, 2] {
            #expect(authenticator.verify(code: authenticator.code(forStep: step + offset), at: Self.now, after: nil) == nil)
        }
    }

    @Test("a code is accepted once: its step, and every earlier one, is refused after it")
    func replay() throws {
        let authenticator = TOTPAuthenticator(secret: TOTPSecret.generate())
        let step = try #require(TOTPAuthenticator.timeStep(at: Self.now))
        let code = authenticator.code(forStep: step)
        let used = try #require(authenticator.verify(code: code, at: Self.now, after: nil))
        #expect(used == step)
        #expect(authenticator.verify(code: code, at: Self.now, after: used) == nil)
        #expect(authenticator.verify(code: authenticator.code(forStep: step - 1), at: Self.now, after: used) == nil)
        #expect(authenticator.verify(code: authenticator.code(forStep: step + 1), at: Self.now, after: used) == step + 1)
    }

    @Test("only exactly six ASCII digits are read, surrounding spaces trimmed")
    func input() throws {
        let authenticator = TOTPAuthenticator(secret: TOTPSecret.generate())
        let code = try #require(authenticator.code(at: Self.now))
        #expect(authenticator.verify(code: "  \(code)\n", at: Self.now, after: nil) != nil)
        let arabicIndic = String(code.map { Character(UnicodeScalar(0x0660 + $0.wholeNumberValue!)!) })
        let fullWidth = String(code.map { Character(UnicodeScalar(0xFF10 + $0.wholeNumberValue!)!) })
        for bad in [String(code.dropLast()), code + "0", "0" + code, String(code.prefix(3)) + " " + String(code.suffix(3)),
                    String(code.dropLast()) + "a", "+" + String(code.dropFirst()), arabicIndic, fullWidth, "", "      "] {
            #expect(authenticator.verify(code: bad, at: Self.now, after: nil) == nil, "\(bad)")
        }
    }

    @Test("no code is accepted for a time before 1970")
    func beforeEpoch() {
        let authenticator = TOTPAuthenticator(secret: Self.rfcSecret)
        #expect(TOTPAuthenticator.timeStep(at: Date(timeIntervalSince1970: -1)) == nil)
        #expect(authenticator.verify(code: "755224", at: Date(timeIntervalSince1970: -1), after: nil) == nil)
        #expect(authenticator.verify(code: "755224", at: Date(timeIntervalSince1970: 10), after: nil) == 0)
    }
}
