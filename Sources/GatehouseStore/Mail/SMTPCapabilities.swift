/// What a server offers in its EHLO reply (RFC 5321 §4.1.1.1): one extension a line after
/// the greeting line, a keyword and its parameters.
struct SMTPCapabilities: Sendable, Equatable {
    /// Upper-cased keywords: `STARTTLS`, `AUTH`, `8BITMIME`, `SIZE` …
    let keywords: Set<String>
    /// Upper-cased AUTH mechanisms, from `AUTH PLAIN LOGIN` (or the old `AUTH=PLAIN LOGIN`).
    let authMechanisms: Set<String>

    /// Nothing offered: the answer to `HELO`.
    static let none = SMTPCapabilities(keywords: [], authMechanisms: [])

    /// Reads an EHLO reply.
    init(ehlo reply: SMTPReply) {
        var keywords: Set<String> = []
        var mechanisms: Set<String> = []
        for line in reply.lines.dropFirst() {
            let words = line.uppercased().split(whereSeparator: { $0 == " " || $0 == "=" })
            guard let keyword = words.first else { continue }
            keywords.insert(String(keyword))
            if keyword == "AUTH" { mechanisms.formUnion(words.dropFirst().map(String.init)) }
        }
        self.init(keywords: keywords, authMechanisms: mechanisms)
    }

    private init(keywords: Set<String>, authMechanisms: Set<String>) {
        self.keywords = keywords
        self.authMechanisms = authMechanisms
    }

    /// Whether `keyword` is offered.
    func offers(_ keyword: String) -> Bool { keywords.contains(keyword) }
}
