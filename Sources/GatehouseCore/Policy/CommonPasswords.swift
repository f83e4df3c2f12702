import Foundation

/// The bundled list of 100,000 common leaked passwords (SecLists, MIT; see
/// `Resources/LICENSE-common-passwords.txt`), read once, for a constant-time membership test.
///
/// Entries are kept in the form passwords are compared in (NFKC, lowercased) and only those
/// a password could be at all (8–128 characters): a shorter one is refused for its length
/// before the list is asked.
public struct CommonPasswords: Sendable {
    private let entries: Set<String>

    /// The bundled list, loaded on first use.
    public static let shared = CommonPasswords(bundled: ())

    /// How many entries are kept.
    public var count: Int { entries.count }

    /// Whether `folded` (NFKC, lowercased) is on the list.
    public func contains(_ folded: String) -> Bool { entries.contains(folded) }

    /// A list from the text of a file, one password per line.
    public init(text: String) {
        var entries = Set<String>()
        entries.reserveCapacity(50_000)
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            // NFKC leaves ASCII as it is (nearly every line): only the rest is normalised.
            if line.allSatisfy({ $0 < 0x80 }) {
                guard (CredentialPolicy.minimumPasswordLength...CredentialPolicy.maximumPasswordLength).contains(line.count) else { continue }
                entries.insert(String(decoding: line, as: UTF8.self).lowercased())
            } else {
                let folded = CredentialPolicy.normalizedPassword(String(decoding: line, as: UTF8.self)).lowercased()
                if CredentialPolicy.isAcceptablePassword(folded) { entries.insert(folded) }
            }
        }
        self.entries = entries
    }

    private init(bundled: Void) {
        // The list ships with the binary (`gatehouse_GatehouseCore.resources`); without it
        // Gatehouse would accept the passwords it exists to refuse, so its absence is fatal.
        guard let url = Bundle.module.url(forResource: "common-passwords", withExtension: "txt"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { fatalError("common-passwords.txt is missing from the GatehouseCore resources") }
        self.init(text: text)
    }
}
