/// Which count of login attempts an attempt belongs to, for `abuse.login_per_account` and
/// `abuse.lockout` (SPEC §2.4).
///
/// An account's attempts are counted apart for each address that has logged in to it
/// successfully before, or signed it up (within ``knownAddressMemory``), and together for
/// every other address.
/// An attacker guessing from elsewhere exhausts and locks only the "elsewhere" bucket: the
/// rightful user, back at an address they logged in from, still gets in with the right
/// password. The price: a user on a new address (travelling, a new phone network) is locked
/// out with the attacker while an attack goes on, and an attacker sharing the user's address
/// (the same NAT) shares the user's bucket, and its limits.
public struct LoginBucket: Sendable, Hashable {
    /// The account's email, normalised (also for emails without an account: the count must
    /// not tell which emails have one).
    public var email: String
    /// The address, when it has logged in to the account before; `nil` for every other one.
    public var knownAddress: String?

    /// Creates a bucket.
    public init(email: String, knownAddress: String?) {
        self.email = email
        self.knownAddress = knownAddress
    }

    /// How long an address that logged in successfully stays known: 30 days.
    public static let knownAddressMemory: Duration = .seconds(30 * 86400)

    /// The subject the per-account rate limit counts.
    public var subject: String { email + "|" + (knownAddress ?? "") }
}
