/// The BCH-protected format and version information words (ISO/IEC 18004 §7.9, Annexes C and D).
enum QRFormat {
    /// The 15 format bits for `level` and `mask`: 5 data bits, 10 BCH(15,5) bits, XOR 0x5412.
    static func formatBits(level: QRErrorCorrection, mask: Int) -> Int {
        let data = level.formatBits << 3 | mask
        var remainder = data
        for _ in 0..<10 { remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537) }
        return (data << 10 | remainder) ^ 0x5412
    }

    /// The 18 version bits for versions 7–40: 6 data bits and 12 BCH(18,6) bits.
    static func versionBits(_ version: Int) -> Int {
        var remainder = version
        for _ in 0..<12 { remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25) }
        return version << 12 | remainder
    }
}
