import Foundation
import GatehouseCore

/// One mail to one recipient, rendered as the RFC 5322 message that ``SMTPClient`` sends.
///
/// What `rendered()` returns is 7-bit ASCII with CRLF line ends and no line over 78
/// characters: non-ASCII header text is RFC 2047 encoded-words and the UTF-8 bodies are
/// quoted-printable, so it goes through any SMTP server as is (no 8BITMIME needed). With
/// `html` it is `multipart/alternative` (the text part first, as RFC 2046 §5.1.4 orders
/// them from plainest to richest).
public struct MailMessage: Sendable {
    /// The `From` mailbox; its address is also the envelope sender of ``SMTPClient/send(_:)``.
    public let from: MailAddress
    /// The recipient's address (`To`, and the envelope recipient).
    public let to: String
    /// The subject, any Unicode text without control characters.
    public let subject: String
    /// The plain-text body.
    public let text: String
    /// The HTML body, if any.
    public let html: String?
    /// `<random@domain-of-from>`.
    public let messageID: String
    /// The `Date` header.
    public let date: Date
    /// The multipart boundary: `=_` cannot occur in quoted-printable text, so no body line
    /// can be taken for it.
    private let boundary: String

    /// Checks the header fields (an address in `to`, no control characters in `subject`) and
    /// draws a Message-ID and a boundary.
    public init(from: MailAddress, to: String, subject: String, text: String, html: String? = nil, date: Date = Date()) throws(MailFormatError) {
        guard !subject.unicodeScalars.contains(where: MailAddress.isControl) else { throw .headerInjection("subject") }
        self.from = from
        self.to = try MailAddress(address: to).address
        self.subject = subject
        self.text = text
        self.html = html
        self.date = date
        self.messageID = "<\(Self.randomHex())@\(from.domain)>"
        self.boundary = "=_gatehouse_\(Self.randomHex())"
    }

    /// The message: headers and body, CRLF line ends, ready for SMTP `DATA`.
    public func rendered() -> String {
        var lines = [
            "From: " + from.headerValue,
            "To: " + to,
            HeaderText.field("Subject", subject),
            "Date: " + Self.rfc5322Date(date),
            "Message-ID: " + messageID,
            "MIME-Version: 1.0",
        ]
        if let html {
            lines += [
                "Content-Type: multipart/alternative;",
                " boundary=\"\(boundary)\"",
                "",
                "--" + boundary,
            ]
            lines += Self.part("text/plain", text)
            lines.append("--" + boundary)
            lines += Self.part("text/html", html)
            lines.append("--\(boundary)--")
        } else {
            lines += Self.part("text/plain", text)
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A body part's headers, the blank line and its quoted-printable content.
    private static func part(_ type: String, _ content: String) -> [String] {
        [
            "Content-Type: \(type); charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            QuotedPrintable.encode(content),
        ]
    }

    /// `Tue, 01 Jul 2025 12:00:00 +0000`: RFC 5322 §3.3, in UTC.
    static func rfc5322Date(_ date: Date) -> String {
        // The HTTP date is the same format, but with the obsolete zone `GMT`.
        HTTPDate.imfFixdate(secondsSince1970: Int64(date.timeIntervalSince1970.rounded(.down))).dropLast(3) + "+0000"
    }

    private static func randomHex() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - value.count) + value
        }.joined()
    }
}
