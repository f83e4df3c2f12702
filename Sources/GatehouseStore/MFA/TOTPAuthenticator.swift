import Foundation
import HummingbirdOTP

/// Time-based one-time passwords for one account (RFC 6238: HMAC-SHA-1, 6 digits, 30-second
/// steps), computed by HummingbirdOTP: the otpauth URI for setup and the check at login.
public struct TOTPAuthenticator: Sendable {
    /// Digits in a code.
    public static let digits = 6
    /// Seconds in a time step.
    public static let period = 30
    /// Steps of clock skew accepted either side of the current one.
    public static let allowedSkew: Int64 = 1

    /// The account's key.
    public let secret: TOTPSecret
    /// The HummingbirdOTP computer for `secret`.
    private let totp: TOTP

    /// An authenticator for `secret` with the standard parameters.
    public init(secret: TOTPSecret) {
        self.init(secret: secret, digits: Self.digits)
    }

    /// An authenticator with another code length: RFC 6238's test vectors are 8 digits long.
    init(secret: TOTPSecret, digits: Int) {
        self.secret = secret
        self.totp = TOTP(secret: secret.string, length: digits, timeStep: Self.period, hashFunction: .sha1)
    }

    /// The RFC 6238 time step `date` falls in, floor(unix time / 30); `nil` before 1970 or for
    /// a date that is not finite.
    public static func timeStep(at date: Date) -> Int64? {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite, seconds >= 0, seconds < Double(Int64.max / 2) else { return nil }
        return Int64(seconds) / Int64(period)
    }

    /// The code for time step `step` (≥ 0), zero-padded to the code length. Step `c` gives
    /// the RFC 4226 HOTP value for counter `c`.
    public func code(forStep step: Int64) -> String {
        precondition(step >= 0, "time steps start at 0")
        // Exact: step × 30 is an integer below 2⁵³, and HummingbirdOTP divides it by 30 again.
        let value = totp.compute(date: Date(timeIntervalSince1970: Double(step) * Double(Self.period)))
        let text = String(value)
        return String(repeating: "0", count: max(0, totp.length - text.count)) + text
    }

    /// The code an authenticator app shows at `date`; `nil` for a date before 1970.
    public func code(at date: Date) -> String? {
        Self.timeStep(at: date).map(code(forStep:))
    }

    /// The key URI authenticator apps scan or import (Google's Key URI format):
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`,
    /// the issuer both as label prefix and parameter, every part percent-encoded (RFC 3986),
    /// so a `:`, `&` or space in either name cannot change the URI's structure.
    public func otpauthURI(issuer: String, account: String) -> String {
        let issuer = PercentEncoding.encode(issuer)
        return "otpauth://totp/\(issuer):\(PercentEncoding.encode(account))?secret=\(secret.base32)&issuer=\(issuer)"
            + "&algorithm=SHA1&digits=\(totp.length)&period=\(Self.period)"
    }

    /// Checks a code typed at `date` and returns the time step it matched, or `nil`.
    ///
    /// The input must be exactly the code length of ASCII digits once surrounding whitespace is
    /// trimmed. Steps t−1, t and t+1 are all computed and compared without early exit (no
    /// timing hint of which step or digit differed); if several match, the latest wins.
    ///
    /// Replay protection: the step is returned only when it is greater than `lastUsedStep`, the
    /// step of this account's last accepted code (`nil` if none). The caller must store the
    /// returned step as the new `lastUsedStep` — in the same transaction that accepts the
    /// login — so each code, and every code of an earlier step, is accepted at most once.
    public func verify(code: String, at date: Date, after lastUsedStep: Int64?) -> Int64? {
        guard let typed = Self.digits(of: code, length: totp.length), let now = Self.timeStep(at: date) else { return nil }
        var matched: Int64?
        for step in (now - Self.allowedSkew)...(now + Self.allowedSkew) where step >= 0 {
            if Self.constantTimeEqual(Array(self.code(forStep: step).utf8), typed) { matched = step }
        }
        guard let matched, matched > lastUsedStep ?? -1 else { return nil }
        return matched
    }

    /// The ASCII digits of `input` with surrounding whitespace trimmed, if that is exactly
    /// `length` digits and nothing else.
    static func digits(of input: String, length: Int) -> [UInt8]? {
        let trimmed = input.utf8.drop(while: Self.isWhitespace).reversed().drop(while: Self.isWhitespace).reversed()
        let bytes = Array(trimmed)
        guard bytes.count == length, bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return bytes
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    /// Byte-wise equality that reads every byte whatever differs.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
