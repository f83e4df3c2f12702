/// How much damage a QR Code survives (ISO/IEC 18004 §7.5.1): more recovery, fewer data bytes.
public enum QRErrorCorrection: Int, Sendable, CaseIterable {
    /// Recovers about 7% of the codewords.
    case low
    /// Recovers about 15% of the codewords: the usual choice for a screen.
    case medium
    /// Recovers about 25% of the codewords.
    case quartile
    /// Recovers about 30% of the codewords.
    case high

    /// The two bits the format information carries for this level (ISO/IEC 18004 Table 12).
    var formatBits: Int {
        switch self {
        case .low: 1
        case .medium: 0
        case .quartile: 3
        case .high: 2
        }
    }
}
