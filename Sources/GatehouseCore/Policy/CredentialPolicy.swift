import Foundation

/// Rules for the email and password a person signs up with (SPEC §2.1).
public enum CredentialPolicy {
    /// Fewest characters in a password.
    public static let minimumPasswordLength = 8
    /// Most characters in a password.
    public static let maximumPasswordLength = 128

    /// Trims and lowercases an email, then checks its shape; `nil` when it is not an address.
    ///
    /// The check is deliberately plain: one `@`, a local part of printable ASCII without
    /// spaces, a domain of dot-separated labels with at least one dot, at most 254 characters.
    /// Internationalised addresses are accepted in their ASCII (punycode) form.
    public static func normalizedEmail(_ raw: String) -> String? {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard email.utf8.count <= 254 else { return nil }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let local = parts[0]
        let domain = parts[1]
        let localAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~.")
        guard (1...64).contains(local.count), local.allSatisfy({ localAllowed.contains($0) }),
            !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..")
        else { return nil }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return nil }
        let labelAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        for label in labels {
            guard (1...63).contains(label.count), label.allSatisfy({ labelAllowed.contains($0) }),
                !label.hasPrefix("-"), !label.hasSuffix("-")
            else { return nil }
        }
        guard let tld = labels.last, !tld.allSatisfy(\.isNumber) else { return nil }
        return email
    }

    /// The form of a password that is hashed and measured: Unicode NFKC (NIST SP 800-63B), so
    /// that the same password typed on different keyboards is the same password.
    public static func normalizedPassword(_ password: String) -> String {
        password.precomposedStringWithCompatibilityMapping
    }

    /// Length of a password as people count it: the Unicode code points of its normalised
    /// form, the one that is hashed (`ﬁ` counts two, `e` + combining acute one).
    public static func passwordLength(_ password: String) -> Int {
        normalizedPassword(password).unicodeScalars.count
    }

    /// Whether a password's length is allowed.
    public static func isAcceptablePassword(_ password: String) -> Bool {
        (minimumPasswordLength...maximumPasswordLength).contains(passwordLength(password))
    }

    /// What is wrong with a new password for the account `email`, or `nil` when it may be used
    /// (NIST SP 800-63B §3.1.1.2): 8–128 characters, no composition rules, not one of the
    /// common leaked passwords of ``CommonPasswords``, not the email or its local part.
    public static func passwordProblem(_ password: String, email: String?) -> PasswordProblem? {
        guard isAcceptablePassword(password) else { return .length }
        let folded = normalizedPassword(password).lowercased()
        if let email, folded == email || folded == email.prefix(while: { $0 != "@" }) { return .email }
        if CommonPasswords.shared.contains(folded) { return .common }
        return nil
    }

    /// The message shown when a password's length is not allowed.
    public static let passwordLengthMessage = "Password must be between \(minimumPasswordLength) and \(maximumPasswordLength) characters."
}

/// Why a new password is refused: each has the message shown in the `password` field.
public enum PasswordProblem: String, Sendable, Equatable {
    /// Shorter than 8 or longer than 128 characters.
    case length
    /// One of the common leaked passwords.
    case common = "common_password"
    /// The account's email or its local part.
    case email = "contains_email"

    /// The field message.
    public var message: String {
        switch self {
        case .length: CredentialPolicy.passwordLengthMessage
        case .common: "This password is one of the most common leaked passwords; choose another."
        case .email: "The password must not be your email address."
        }
    }
}
