/// The bytes of `DATA` (RFC 5321 §4.5.2): every line break made CRLF, a `.` doubled at the
/// start of a line (dot-stuffing, so that no line of the message can end it early), and the
/// `CRLF.CRLF` terminator.
enum SMTPData {
    /// `message` ready to write after the server's 354.
    static func encode(_ message: String) -> [UInt8] {
        var lines = message.mailLines
        if lines.last?.isEmpty == true { lines.removeLast() }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(message.utf8.count + 2 * lines.count + 3)
        for line in lines {
            if line.hasPrefix(".") { bytes.append(UInt8(ascii: ".")) }
            bytes += line.utf8
            bytes += [13, 10]
        }
        bytes += Array(".\r\n".utf8)
        return bytes
    }
}
