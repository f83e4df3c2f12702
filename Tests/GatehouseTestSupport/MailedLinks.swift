import Foundation

/// The quoted-printable text of a mail decoded (soft line breaks joined, `=XX` turned back
/// into bytes): enough to read the links Gatehouse mails.
public func decodedQuotedPrintable(_ message: String) -> String {
    let joined = message.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(of: "=\n", with: "")
    var bytes: [UInt8] = []
    var utf8 = Array(joined.utf8)[...]
    while let byte = utf8.popFirst() {
        if byte == UInt8(ascii: "="), utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The token of the first `<path>?token=<43 base64url characters>` link in a mail.
public func mailedToken(_ message: String, path: String) -> String? {
    let text = decodedQuotedPrintable(message)
    guard let range = text.range(of: "\(path)?token=") else { return nil }
    let token = text[range.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
    return token.count == 43 ? String(token) : nil
}

/// The `.eml` files a `file` mailer wrote into `directory`, oldest first.
public func mailFiles(in directory: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasSuffix(".eml") }.sorted().compactMap { try? String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8) }
}
