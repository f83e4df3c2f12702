import Foundation
import Testing

@testable import GatehouseStore

@Suite("Mail message rendering (RFC 5322, MIME) and header-injection refusal")
struct MailMessageTests {
    let from: MailAddress

    init() throws {
        from = try MailAddress(parsing: "Gatehouse <no-reply@localhost>")
    }

    @Test("parses `Name <address>`, a quoted name and a bare address")
    func parsesAddresses() throws {
        #expect(from.displayName == "Gatehouse")
        #expect(from.address == "no-reply@localhost")
        #expect(from.domain == "localhost")
        let quoted = try MailAddress(parsing: #""Doe, Jane \"JD\"" <jane.doe+tag@example.com>"#)
        #expect(quoted.displayName == #"Doe, Jane "JD""#)
        #expect(quoted.address == "jane.doe+tag@example.com")
        #expect(quoted.description == #""Doe, Jane \"JD\"" <jane.doe+tag@example.com>"#)
        let bare = try MailAddress(parsing: "a@b")
        #expect(bare.displayName == nil)
        #expect(bare.description == "a@b")
        #expect(try MailAddress(parsing: "<a@b>").address == "a@b")
    }

    @Test(
        "refuses addresses that could add headers, recipients or commands",
        arguments: [
            "a@b\r\nBcc: evil@example.com", "Name\n <a@b>", "a@b\r", "Evil <a@b>, c@d", "<a@b> trailing", "a@b, c@d",
            "a b@c", "a@b>", "<a@b", "no-at-sign", "a..b@c", "a@b..c", "@b", "a@", "a@b\u{0}", "Jöhn <jöhn@example.com>",
            "a@exämple.com", "\"quoted local\"@example.com", "a@[127.0.0.1]", "a>b@example.com", "a<b@example.com",
        ]
    )
    func refusesBadAddresses(text: String) {
        #expect(throws: MailFormatError.self) { try MailAddress(parsing: text) }
    }

    @Test("line breaks and control characters in any header are refused with header_injection")
    func refusesHeaderInjection() throws {
        for subject in ["Hi\r\nBcc: evil@example.com", "Hi\nthere", "Hi\rthere", "tab\there", "nul\u{0}", "line\u{2028}separator"] {
            #expect(throws: MailFormatError.headerInjection("subject")) {
                try MailMessage(from: from, to: "user@example.com", subject: subject, text: "x")
            }
        }
        #expect(throws: MailFormatError.headerInjection("display name")) {
            try MailAddress(address: "a@b", displayName: "Gate\r\nBcc: evil@example.com")
        }
        #expect(throws: MailFormatError.headerInjection("address")) {
            try MailMessage(from: from, to: "user@example.com\r\nBcc: evil@example.com", subject: "Hi", text: "x")
        }
    }

    @Test("headers are From, To, Subject, Date, Message-ID and MIME-Version, with CRLF line ends only")
    func headers() throws {
        let message = try MailMessage(
            from: from, to: "user@example.com", subject: "Reset your password", text: "Hello\nworld",
            date: Date(timeIntervalSince1970: 1_782_000_000)
        )
        let rendered = message.rendered()
        let head = try #require(rendered.components(separatedBy: "\r\n\r\n").first)
        #expect(head.components(separatedBy: "\r\n") == [
            "From: Gatehouse <no-reply@localhost>",
            "To: user@example.com",
            "Subject: Reset your password",
            "Date: Sun, 21 Jun 2026 00:00:00 +0000",
            "Message-ID: \(message.messageID)",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ])
        #expect(!rendered.replacing("\r\n", with: "").contains("\n"))
        #expect(!rendered.replacing("\r\n", with: "").contains("\r"))
        #expect(rendered.hasSuffix("Hello\r\nworld\r\n"))
    }

    @Test("the Message-ID is random, at the From domain")
    func messageID() throws {
        let first = try MailMessage(from: from, to: "u@example.com", subject: "s", text: "t")
        let second = try MailMessage(from: from, to: "u@example.com", subject: "s", text: "t")
        #expect(first.messageID.wholeMatch(of: /<[0-9a-f]{32}@localhost>/) != nil)
        #expect(first.messageID != second.messageID)
    }

    @Test("a non-ASCII subject and display name are RFC 2047 encoded-words of whole characters")
    func encodedWords() throws {
        let subject = "Réinitialisez votre mot de passe — ✓ 🔐 ça y est, c’est presque fini"
        let sender = try MailAddress(address: "no-reply@example.com", displayName: "Gâtehouse Sécurité")
        let rendered = try MailMessage(from: sender, to: "u@example.com", subject: subject, text: "t").rendered()
        let head = try #require(rendered.components(separatedBy: "\r\n\r\n").first)
        #expect(head.unicodeScalars.allSatisfy { $0.isASCII })
        let unfolded = head.replacing("\r\n ", with: " ")
        let subjectLine = try #require(unfolded.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject: ") })
        #expect(decodeWords(String(subjectLine.dropFirst("Subject: ".count))) == subject)
        let fromLine = try #require(unfolded.components(separatedBy: "\r\n").first { $0.hasPrefix("From: ") })
        #expect(fromLine.hasSuffix(" <no-reply@example.com>"))
        #expect(decodeWords(String(fromLine.dropFirst("From: ".count).dropLast(" <no-reply@example.com>".count))) == "Gâtehouse Sécurité")
        #expect(head.components(separatedBy: "\r\n").allSatisfy { $0.count <= 76 })
    }

    @Test("a long ASCII subject is folded at spaces into lines of at most 78 characters")
    func foldsLongSubject() throws {
        let subject = Array(repeating: "word", count: 40).joined(separator: " ")
        let rendered = try MailMessage(from: from, to: "u@example.com", subject: subject, text: "t").rendered()
        let head = try #require(rendered.components(separatedBy: "\r\n\r\n").first)
        #expect(head.components(separatedBy: "\r\n").allSatisfy { $0.count <= 78 })
        #expect(head.contains("Subject: " + subject.prefix(20)))
        #expect(head.replacing("\r\n ", with: " ").contains("Subject: \(subject)\r\n"))
    }

    @Test("with html: multipart/alternative, text part first, both quoted-printable UTF-8")
    func multipart() throws {
        let message = try MailMessage(from: from, to: "u@example.com", subject: "s", text: "plain é", html: "<p>rich é</p>")
        let rendered = message.rendered()
        let boundary = try #require(rendered.firstMatch(of: /boundary="([^"]+)"/)?.1)
        let parts = rendered.components(separatedBy: "--\(boundary)")
        #expect(parts.count == 4)
        #expect(parts[1].contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nplain =C3=A9\r\n"))
        #expect(parts[2].contains("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>rich =C3=A9</p>\r\n"))
        #expect(parts[3] == "--\r\n")
    }

    @Test("quoted-printable: `=` escaped, trailing spaces kept visible, long lines wrapped at 76 with soft breaks")
    func quotedPrintable() {
        #expect(QuotedPrintable.encode("a=b") == "a=3Db")
        #expect(QuotedPrintable.encode("end \nnext\t") == "end=20\r\nnext=09")
        #expect(QuotedPrintable.encode("crlf\r\nand\rcr") == "crlf\r\nand\r\ncr")
        let long = String(repeating: "0123456789", count: 20) + "é"
        let encoded = QuotedPrintable.encode(long)
        let lines = encoded.components(separatedBy: "\r\n")
        #expect(lines.count > 2)
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(lines.dropLast().allSatisfy { $0.hasSuffix("=") })
        #expect(lines.map { $0.hasSuffix("=") ? String($0.dropLast()) : $0 }.joined() == String(repeating: "0123456789", count: 20) + "=C3=A9")
    }

    /// Joins and decodes `=?UTF-8?B?…?=` words separated by spaces.
    private func decodeWords(_ text: String) -> String? {
        var bytes = Data()
        for word in text.split(separator: " ") {
            guard word.hasPrefix("=?UTF-8?B?"), word.hasSuffix("?="), word.count <= 75,
                let data = Data(base64Encoded: String(word.dropFirst(10).dropLast(2)))
            else { return nil }
            // Each word holds whole characters (RFC 2047 §5).
            guard String(data: data, encoding: .utf8) != nil else { return nil }
            bytes += data
        }
        return String(data: bytes, encoding: .utf8)
    }
}
