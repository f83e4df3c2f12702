/// RFC 4648 base32 (alphabet A–Z, 2–7), the encoding of TOTP keys in authenticator apps.
enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// `bytes` encoded five bits per character, the last group zero-filled, without `=` padding
    /// (the otpauth key URI format leaves it out).
    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bitCount = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bitCount += 8
            while bitCount >= 5 {
                bitCount -= 5
                output.append(alphabet[Int((buffer >> UInt32(bitCount)) & 0x1F)])
            }
        }
        if bitCount > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bitCount)) & 0x1F)]) }
        return String(decoding: output, as: UTF8.self)
    }
}
