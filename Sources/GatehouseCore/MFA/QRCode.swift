/// A QR Code (ISO/IEC 18004 Model 2) holding one byte-mode segment of UTF-8 text, in the
/// smallest version 1–40 that fits, with the mask of lowest penalty unless one is asked for.
public struct QRCode: Sendable, Equatable {
    /// The version, 1–40: the size grows by four modules per version.
    public let version: Int
    /// The error-correction level.
    public let correction: QRErrorCorrection
    /// The data mask used, 0–7.
    public let mask: Int
    /// Modules on a side, without the quiet zone.
    public let size: Int
    /// Dark modules, row by row.
    private let modules: [Bool]

    /// Encodes `text` as UTF-8 bytes; `mask` forces a mask pattern (0–7) instead of choosing the
    /// one the penalty rules prefer. Throws when the text does not fit in version 40.
    public init(encoding text: String, correction: QRErrorCorrection = .medium, mask: Int? = nil) throws(QRCodeError) {
        let bytes = Array(text.utf8)
        if let mask, !(0...7).contains(mask) { throw QRCodeError(message: "mask \(mask) is not 0–7") }
        guard let version = QRVersion.smallest(holding: bytes.count, at: correction) else {
            throw QRCodeError(message: "\(bytes.count) bytes do not fit in a version 40 QR Code at level \(correction)")
        }
        var matrix = QRMatrix(version: version)
        matrix.place(codewords: Self.codewords(bytes, version: version, correction: correction))
        let chosen = mask ?? Self.bestMask(for: matrix, correction: correction)
        matrix.apply(mask: chosen)
        matrix.drawFormat(bits: QRFormat.formatBits(level: correction, mask: chosen))
        self.version = version.number
        self.correction = correction
        self.mask = chosen
        self.size = matrix.size
        self.modules = matrix.modules
    }

    /// Whether the module at column `x`, row `y` (from the top left) is dark; outside the code
    /// (the quiet zone) every module is light.
    public func isDark(x: Int, y: Int) -> Bool {
        guard (0..<size).contains(x), (0..<size).contains(y) else { return false }
        return modules[y * size + x]
    }

    /// The mask whose result scores the lowest penalty; the first such on a tie.
    private static func bestMask(for unmasked: QRMatrix, correction: QRErrorCorrection) -> Int {
        var best = (mask: 0, penalty: Int.max)
        for mask in 0..<8 {
            var candidate = unmasked
            candidate.apply(mask: mask)
            candidate.drawFormat(bits: QRFormat.formatBits(level: correction, mask: mask))
            let penalty = QRPenalty.score(of: candidate)
            if penalty < best.penalty { best = (mask, penalty) }
        }
        return best.mask
    }

    /// The final codeword sequence: mode, count, data, terminator and padding, split into
    /// blocks, each followed by its Reed–Solomon codewords, interleaved (ISO/IEC 18004 §7.6).
    static func codewords(_ bytes: [UInt8], version: QRVersion, correction: QRErrorCorrection) -> [UInt8] {
        let capacity = version.dataCodewords(correction)
        var bits = BitBuffer()
        bits.append(0b0100, count: 4)
        bits.append(bytes.count, count: version.byteCountBits)
        for byte in bytes { bits.append(Int(byte), count: 8) }
        bits.append(0, count: min(4, capacity * 8 - bits.count))
        bits.append(0, count: (8 - bits.count % 8) % 8)
        var data = bits.bytes
        let padCount = capacity - data.count
        for index in 0..<padCount { data.append(index % 2 == 0 ? 0xEC : 0x11) }
        return interleave(data, version: version, correction: correction)
    }

    /// Splits `data` into the version's blocks (short blocks first, long ones one codeword
    /// longer), appends each block's error correction, and interleaves column by column.
    private static func interleave(_ data: [UInt8], version: QRVersion, correction: QRErrorCorrection) -> [UInt8] {
        let blockCount = version.blockCount(correction)
        let eccLength = version.eccCodewordsPerBlock(correction)
        let shortBlockCount = blockCount - version.totalCodewords % blockCount
        let shortDataLength = version.totalCodewords / blockCount - eccLength
        let generator = ReedSolomon.generator(degree: eccLength)
        var dataBlocks: [[UInt8]] = []
        var start = 0
        for index in 0..<blockCount {
            let length = shortDataLength + (index < shortBlockCount ? 0 : 1)
            dataBlocks.append(Array(data[start..<(start + length)]))
            start += length
        }
        let eccBlocks = dataBlocks.map { ReedSolomon.remainder(of: $0, generator: generator) }
        var result: [UInt8] = []
        result.reserveCapacity(version.totalCodewords)
        for column in 0...shortDataLength {
            for block in dataBlocks where column < block.count { result.append(block[column]) }
        }
        for column in 0..<eccLength {
            for block in eccBlocks { result.append(block[column]) }
        }
        return result
    }
}

/// Why text could not be encoded as a QR Code.
public struct QRCodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for a log line.
    public var message: String

    /// Creates an error.
    public init(message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// Bits appended most significant first, packed into bytes.
struct BitBuffer {
    /// The packed bytes; the last one is padded with zeros.
    private(set) var bytes: [UInt8] = []
    /// Bits appended so far.
    private(set) var count = 0

    /// Appends the low `count` bits of `value`, most significant first.
    mutating func append(_ value: Int, count bitCount: Int) {
        for shift in stride(from: bitCount - 1, through: 0, by: -1) {
            if count % 8 == 0 { bytes.append(0) }
            if (value >> shift) & 1 != 0 { bytes[bytes.count - 1] |= 0x80 >> UInt8(count % 8) }
            count += 1
        }
    }
}
