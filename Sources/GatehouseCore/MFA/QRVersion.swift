/// The layout of one QR Code version (1–40): its size, alignment patterns and block structure.
struct QRVersion: Sendable, Equatable {
    /// Every version of QR Code Model 2.
    static let all = 1...40

    /// The version number, 1–40.
    let number: Int

    /// Modules on a side: 21 for version 1, 4 more per version.
    var size: Int { number * 4 + 17 }

    /// Bits of the byte-mode character count (ISO/IEC 18004 Table 3).
    var byteCountBits: Int { number <= 9 ? 8 : 16 }

    /// Centre coordinates of the alignment patterns, on both axes (ISO/IEC 18004 Annex E).
    var alignmentPositions: [Int] {
        guard number > 1 else { return [] }
        let count = number / 7 + 2
        let step = (number * 8 + count * 3 + 5) / (count * 4 - 4) * 2
        return [6] + (0..<(count - 1)).map { size - 7 - $0 * step }.reversed()
    }

    /// Modules left for codewords once the function patterns and format/version areas are drawn.
    var rawDataModules: Int {
        var result = (16 * number + 128) * number + 64
        if number >= 2 {
            let count = number / 7 + 2
            result -= (25 * count - 10) * count - 55
            if number >= 7 { result -= 36 }
        }
        return result
    }

    /// All codewords, data and error correction.
    var totalCodewords: Int { rawDataModules / 8 }

    /// Error-correction codewords in each block at `level`.
    func eccCodewordsPerBlock(_ level: QRErrorCorrection) -> Int {
        Self.eccCodewordsPerBlock[level.rawValue][number]
    }

    /// Reed–Solomon blocks at `level`.
    func blockCount(_ level: QRErrorCorrection) -> Int {
        Self.blockCount[level.rawValue][number]
    }

    /// Data codewords at `level`: what is left after the error correction.
    func dataCodewords(_ level: QRErrorCorrection) -> Int {
        totalCodewords - eccCodewordsPerBlock(level) * blockCount(level)
    }

    /// The smallest version whose byte-mode capacity at `level` holds `byteCount` bytes.
    static func smallest(holding byteCount: Int, at level: QRErrorCorrection) -> QRVersion? {
        all.lazy.map(QRVersion.init(number:)).first { version in
            byteCount < 1 << version.byteCountBits
                && 4 + version.byteCountBits + byteCount * 8 <= version.dataCodewords(level) * 8
        }
    }

    // ISO/IEC 18004 Table 9, by level (L, M, Q, H) then version; index 0 is unused.
    private static let eccCodewordsPerBlock: [[Int]] = [
        [0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
        [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
        [0, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30, 28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
        [0, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28, 30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
    ]

    private static let blockCount: [[Int]] = [
        [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25],
        [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49],
        [0, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68],
        [0, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81],
    ]
}
