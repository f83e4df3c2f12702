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
    func pyotpCode() async throws {
        let secret = TOTPSecret.generate()
        let authenticator = TOTPAuthenticator(secret: secret)
        for offset in [-30.0, 0, 30] {
            let at = Self.now.timeIntervalSince1970 + offset
            let code = try await runPython("import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))", arguments: [secret.base32, String(Int(at))])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(code == authenticator.code(at: Date(timeIntervalSince1970: at)))
            #expect(authenticator.verify(code: code, at: Self.now, after: nil) == TOTPAuthenticator.timeStep(at: Date(timeIntervalSince1970: at)))
        }
    }

    @Test("pyotp parses the otpauth URI back to the same secret, issuer, account and parameters")
    func pyotpParsesURI() async throws {
        let secret = TOTPSecret.generate()
        let uri = TOTPAuthenticator(secret: secret).otpauthURI(issuer: "Gate & House: Ünï?#", account: "alice+mfa@example.com")
        #expect(uri.hasPrefix("otpauth://totp/Gate%20%26%20House%3A%20%C3%9Cn%C3%AF%3F%23:alice%2Bmfa%40example.com?secret=\(secret.base32)&issuer=Gate%20%26"))
        let parsed = try await runPython(
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

@Suite("MFA secrets at rest")
struct SecretBoxTests {
    static func box() -> SecretBox { SecretBox(key: SymmetricKey(size: .bits256))! }

    @Test("a sealed secret opens for its user with its key, and is a versioned text")
    func roundTrip() throws {
        let box = Self.box()
        let secret = TOTPSecret.generate().bytes
        let sealed = try box.seal(secret, userID: "user-1")
        #expect(sealed.hasPrefix("v1."))
        #expect(Data(base64Encoded: String(sealed.dropFirst(3)))?.count == 12 + secret.count + 16)
        #expect(try box.open(sealed, userID: "user-1") == secret)
        #expect(try box.seal(secret, userID: "user-1") != sealed)
        #expect(SecretBox(key: SymmetricKey(size: .bits128)) == nil)
    }

    @Test("another key, another user id, or any changed byte does not open")
    func tamper() throws {
        let box = Self.box()
        let sealed = try box.seal(Array("secret".utf8), userID: "user-1")
        #expect(throws: SecretBoxError.self) { try Self.box().open(sealed, userID: "user-1") }
        #expect(throws: SecretBoxError.self) { try box.open(sealed, userID: "user-2") }
        let combined = try #require(Data(base64Encoded: String(sealed.dropFirst(3))))
        for index in combined.indices {
            var changed = combined
            changed[index] ^= 0x01
            #expect(throws: SecretBoxError.self) { try box.open("v1." + changed.base64EncodedString(), userID: "user-1") }
        }
        #expect(throws: SecretBoxError.self) { try box.open("v2." + sealed.dropFirst(3), userID: "user-1") }
        #expect(throws: SecretBoxError.self) { try box.open("v1.not base64", userID: "user-1") }
    }
}

@Suite("MFA key loading")
struct MFAKeyTests {
    static let key = (0..<32).map { UInt8($0 * 7 + 1) }
    static var base64: String { Data(key).base64EncodedString() }
    static var hex: String { key.map { String(format: "%02x", $0) }.joined() }

    /// Writes `text` to `path` with `mode`.
    static func write(_ text: String, to path: String, mode: Int = 0o600) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    /// Whether `first` opens what `second` seals: the two hold the same key.
    static func sameKey(_ first: SecretBox, _ second: SecretBox) -> Bool {
        guard let sealed = try? second.seal([1, 2, 3], userID: "u") else { return false }
        return (try? first.open(sealed, userID: "u")) == [1, 2, 3]
    }

    /// Loads with only `keyFile` or only the variable set, the default path never used.
    static func load(keyFile: String? = nil, variable: String? = nil, in directory: TemporaryDirectory) throws -> SecretBox {
        let environment = variable.map { [SecretBox.environmentVariable: $0] } ?? [:]
        return try SecretBox.load(keyFile: keyFile, environment: environment, defaultPath: directory.file("unused.key"))
    }

    @Test("the key file and the variable take base64 or hex, whitespace trimmed")
    func formats() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let reference = SecretBox(key: SymmetricKey(data: Self.key))!
        for (name, text) in [("b64", Self.base64 + "\n"), ("hex", "  " + Self.hex + "\n"), ("HEX", Self.hex.uppercased())] {
            try Self.write(text, to: directory.file(name))
            #expect(Self.sameKey(reference, try Self.load(keyFile: directory.file(name), in: directory)), "\(name)")
        }
        #expect(Self.sameKey(reference, try Self.load(variable: " " + Self.base64 + " ", in: directory)))
        #expect(Self.sameKey(reference, try Self.load(variable: Self.hex, in: directory)))
        #expect(!FileManager.default.fileExists(atPath: directory.file("unused.key")))
    }

    @Test("a wrong length or encoding is refused, naming the file or variable and never the key")
    func badKeys() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let short = Data(Self.key.prefix(16)).base64EncodedString()
        let cases = [short, String(Self.hex.dropLast()), Self.hex + "00", "zz" + Self.hex.dropFirst(2), "garbage!", ""]
        for text in cases {
            try Self.write(text, to: directory.file("bad.key"))
            let fromFile = #expect(throws: ConfigurationError.self) { try Self.load(keyFile: directory.file("bad.key"), in: directory) }
            #expect(fromFile?.key == directory.file("bad.key"))
            let fromVariable = #expect(throws: ConfigurationError.self) { try Self.load(variable: text, in: directory) }
            #expect(fromVariable?.key == SecretBox.environmentVariable)
            for error in [fromFile, fromVariable].compactMap({ $0 }) where text.count > 4 {
                #expect(!error.description.contains(text.trimmingCharacters(in: .whitespaces)))
            }
        }
        let tooShort = #expect(throws: ConfigurationError.self) { try Self.load(variable: short, in: directory) }
        #expect(tooShort?.message.contains("16 bytes") == true)
    }

    @Test("a key file group or others can read is refused, as is a missing file, and both sources at once")
    func refusals() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for mode in [0o640, 0o604, 0o620, 0o644] {
            try Self.write(Self.base64, to: directory.file("open.key"), mode: mode)
            let error = #expect(throws: ConfigurationError.self) { try Self.load(keyFile: directory.file("open.key"), in: directory) }
            #expect(error?.message.contains("chmod 600") == true)
        }
        try Self.write(Self.base64, to: directory.file("owner.key"), mode: 0o400)
        #expect(throws: Never.self) { try Self.load(keyFile: directory.file("owner.key"), in: directory) }
        let missing = #expect(throws: ConfigurationError.self) { try Self.load(keyFile: directory.file("missing.key"), in: directory) }
        #expect(missing?.key == directory.file("missing.key"))
        #expect(throws: ConfigurationError.self) { try Self.load(keyFile: directory.file("owner.key"), variable: Self.base64, in: directory) }
        try Self.write(Self.base64, to: directory.file("default.key"), mode: 0o644)
        #expect(throws: ConfigurationError.self) { try SecretBox.load(keyFile: nil, environment: [:], defaultPath: directory.file("default.key")) }
    }

    @Test("with no key configured one is generated beside the database, mode 0600, and reused")
    func generated() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("mfa.key")
        let first = try SecretBox.load(keyFile: nil, environment: [:], defaultPath: path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines))?.count == 32)
        let second = try SecretBox.load(keyFile: nil, environment: [:], defaultPath: path)
        #expect(Self.sameKey(first, second))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["mfa.key"])
    }

    @Test("a process that loses the race to create the key file takes the winner's key")
    func loserReadsWinner() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("mfa.key")
        try Self.write(Self.base64 + "\n", to: path)
        #expect(try KeyFile.publishNewKey(at: path) == Self.key)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == Self.base64 + "\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["mfa.key"])
    }

    @Test("concurrent first loads agree on one key")
    func concurrentFirstLoads() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("mfa.key")
        let boxes = LockedResults()
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            boxes.append(try? SecretBox.load(keyFile: nil, environment: [:], defaultPath: path))
        }
        let loaded = boxes.values.compactMap { $0 }
        #expect(loaded.count == 16)
        #expect(loaded.allSatisfy { Self.sameKey($0, loaded[0]) })
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["mfa.key"])
    }
}

/// Results gathered from several threads.
final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [SecretBox?] = []

    func append(_ box: SecretBox?) { lock.withLock { stored.append(box) } }
    var values: [SecretBox?] { lock.withLock { stored } }
}

@Suite("Recovery codes")
struct RecoveryCodeTests {
    @Test("a set is 10 distinct codes shaped xxxx-xxxx-xxxx from the unambiguous alphabet")
    func generation() {
        let codes = RecoveryCode.generateSet()
        #expect(codes.count == 10 && Set(codes).count == 10)
        for code in codes {
            let parts = code.formatted.split(separator: "-")
            #expect(parts.count == 3 && parts.allSatisfy { $0.count == 4 })
            #expect(code.normalized.allSatisfy { "0123456789abcdefghjkmnpqrstvwxyz".contains($0) })
            #expect(RecoveryCode(code.formatted) == code)
        }
        #expect(Set(RecoveryCode.generateSet() + codes).count == 20)
    }

    @Test("input is read whatever the case, spaces and dashes, with o, i and l taken for 0 and 1")
    func normalization() throws {
        let code = try #require(RecoveryCode("7k2m-9p0q-1rst"))
        for typed in ["7K2M-9P0Q-1RST", "7k2m9p0q1rst", " 7k2m 9p0q 1rst ", "7k-2m9-p0q1-rs-t", "7k2m-9pOq-lrst", "7k2m-9poq-Irst"] {
            #expect(RecoveryCode(typed) == code, "\(typed)")
        }
        for bad in ["7k2m-9p0q-1rs", "7k2m-9p0q-1rstv", "7k2m-9p0q-1rsu", "7k2m_9p0q_1rst", "7k2m-9p0q-1rs!", ""] {
            #expect(RecoveryCode(bad) == nil, "\(bad)")
        }
    }

    @Test("hashes are SHA-256 hex, the same for every way of typing a code, different per code and per user")
    func hashes() throws {
        let codes = RecoveryCode.generateSet()
        let hashes = codes.map { $0.hash(userID: "user-1") }
        #expect(Set(hashes).count == 10)
        #expect(hashes.allSatisfy { $0.hex.count == 64 && $0.hex.allSatisfy(\.isHexDigit) })
        #expect(!hashes.contains { $0.hex.contains(codes[0].normalized) })
        let typed = try #require(RecoveryCode(codes[0].formatted.uppercased().replacingOccurrences(of: "-", with: " ")))
        #expect(typed.hash(userID: "user-1") == hashes[0])
        #expect(codes[0].hash(userID: "user-2") != hashes[0])
        let expected = SHA256.hash(data: Array("user-1\u{0}\(codes[0].normalized)".utf8)).withUnsafeBytes { TokenHash.hex($0) }
        #expect(hashes[0].hex == expected)
    }
}
