import NIOCore

/// One reply of an SMTP server: a three-digit code and its text lines (RFC 5321 §4.2).
struct SMTPReply: Sendable, Equatable {
    /// 220, 250, 354, 421, 535 …
    let code: Int
    /// The text after the code on each line.
    let lines: [String]

    /// 2xx.
    var isPositive: Bool { (200..<300).contains(code) }

    /// The text for an error message: lines joined, control characters dropped, shortened.
    var summary: String {
        let text = lines.joined(separator: " ").unicodeScalars.filter { $0.value >= 32 && $0.value != 127 }
        return String(String.UnicodeScalarView(text.prefix(300)))
    }
}

/// The bytes did not frame as SMTP replies.
struct SMTPReplyFormatError: Error, Equatable {
    /// What was wrong.
    let message: String
}

/// Frames SMTP replies: lines ending in CRLF (a bare LF is accepted), `250-…` continued by
/// more lines of the same code up to the final `250 …`. Lines and replies are bounded so
/// that a hostile server cannot grow memory without end.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply

    /// RFC 5321 §4.5.3.1.5 allows 512 bytes a reply line; servers write longer ones.
    static let maximumLineLength = 4096
    /// Lines in one reply (an EHLO reply has one per extension).
    static let maximumLines = 256

    private var code: Int?
    private var lines: [String] = []

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            guard buffer.readableBytes <= Self.maximumLineLength else { throw SMTPReplyFormatError(message: "reply line too long") }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        guard length <= Self.maximumLineLength, var line = buffer.readBytes(length: length + 1) else {
            throw SMTPReplyFormatError(message: "reply line too long")
        }
        line.removeLast()
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if let reply = try feed(line) { context.fireChannelRead(wrapInboundOut(reply)) }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if seenEOF {
            while try decode(context: context, buffer: &buffer) == .continue {}
            return .needMoreData
        }
        // The decoder is removed at STARTTLS, after the server's go-ahead: bytes still here
        // came in plain text and whoever injected them must not be believed (RFC 3207 §4.2).
        guard buffer.readableBytes == 0, code == nil else {
            throw SMTPReplyFormatError(message: "bytes left over that are not a whole reply")
        }
        return .needMoreData
    }

    /// Takes one line; returns the reply it completes, if any.
    mutating func feed(_ line: [UInt8]) throws -> SMTPReply? {
        let digits = line.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ (48...57).contains($0) }), let value = Int(String(decoding: digits, as: UTF8.self)) else {
            throw SMTPReplyFormatError(message: "a reply line does not start with a three-digit code")
        }
        let separator = line.count > 3 ? line[3] : UInt8(ascii: " ")
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            throw SMTPReplyFormatError(message: "a reply code is not followed by a space or a hyphen")
        }
        guard code == nil || code == value else { throw SMTPReplyFormatError(message: "a multi-line reply changes its code") }
        guard lines.count < Self.maximumLines else { throw SMTPReplyFormatError(message: "a reply has too many lines") }
        code = value
        lines.append(String(decoding: line.dropFirst(4), as: UTF8.self))
        guard separator == UInt8(ascii: " ") else { return nil }
        defer { code = nil; lines = [] }
        return SMTPReply(code: value, lines: lines)
    }
}
