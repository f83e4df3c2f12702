import Testing

@testable import GatehouseCore

@Suite("QR Code encoder")
struct QRCodeTests {
    /// The matrix as rows of `#` (dark) and `.` (light).
    static func rows(_ code: QRCode) -> [String] {
        (0..<code.size).map { y in String((0..<code.size).map { code.isDark(x: $0, y: y) ? "#" : "." }) }
    }

    @Test("format information matches ISO/IEC 18004 Annex C for every level and mask")
    func formatInformation() {
        let expected: [QRErrorCorrection: [Int]] = [
            .low: [0b111011111000100, 0b111001011110011, 0b111110110101010, 0b111100010011101, 0b110011000101111, 0b110001100011000, 0b110110001000001, 0b110100101110110],
            .medium: [0b101010000010010, 0b101000100100101, 0b101111001111100, 0b101101101001011, 0b100010111111001, 0b100000011001110, 0b100111110010111, 0b100101010100000],
            .quartile: [0b011010101011111, 0b011000001101000, 0b011111100110001, 0b011101000000110, 0b010010010110100, 0b010000110000011, 0b010111011011010, 0b010101111101101],
            .high: [0b001011010001001, 0b001001110111110, 0b001110011100111, 0b001100111010000, 0b000011101100010, 0b000001001010101, 0b000110100001100, 0b000100000111011],
        ]
        for (level, words) in expected {
            for (mask, word) in words.enumerated() {
                #expect(QRFormat.formatBits(level: level, mask: mask) == word, "level \(level) mask \(mask)")
            }
        }
    }

    @Test("version information matches ISO/IEC 18004 Annex D")
    func versionInformation() {
        #expect(QRFormat.versionBits(7) == 0b000111110010010100)
        #expect(QRFormat.versionBits(8) == 0b001000010110111100)
        #expect(QRFormat.versionBits(20) == 0b010100100110100110)
        #expect(QRFormat.versionBits(40) == 0b101000110001101001)
    }

    @Test("Reed–Solomon codewords match the worked examples (ISO/IEC 18004 Annex I, 1-M)")
    func reedSolomon() {
        let generator = ReedSolomon.generator(degree: 10)
        let numeric: [UInt8] = [0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11]
        #expect(ReedSolomon.remainder(of: numeric, generator: generator) == [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55])
        let alphanumeric: [UInt8] = [0x20, 0x5B, 0x0B, 0x78, 0xD1, 0x72, 0xDC, 0x4D, 0x43, 0x40, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11]
        #expect(ReedSolomon.remainder(of: alphanumeric, generator: generator) == [0xC4, 0x23, 0x27, 0x77, 0xEB, 0xD7, 0xE7, 0xE2, 0x5D, 0x17])
    }

    @Test("alignment patterns sit where ISO/IEC 18004 Annex E puts them")
    func alignmentPositions() {
        #expect(QRVersion(number: 1).alignmentPositions == [])
        #expect(QRVersion(number: 2).alignmentPositions == [6, 18])
        #expect(QRVersion(number: 7).alignmentPositions == [6, 22, 38])
        #expect(QRVersion(number: 14).alignmentPositions == [6, 26, 46, 66])
        #expect(QRVersion(number: 20).alignmentPositions == [6, 34, 62, 90])
        #expect(QRVersion(number: 32).alignmentPositions == [6, 34, 60, 86, 112, 138])
        #expect(QRVersion(number: 40).alignmentPositions == [6, 30, 58, 86, 114, 142, 170])
    }

    @Test("the smallest version that holds the bytes is chosen, up to the byte capacities of Table 7")
    func versionChoice() throws {
        let capacities: [(QRErrorCorrection, version: Int, bytes: Int)] = [
            (.medium, 1, 14), (.medium, 2, 26), (.medium, 5, 84), (.medium, 10, 213), (.medium, 20, 666), (.medium, 40, 2331),
            (.low, 1, 17), (.low, 40, 2953), (.quartile, 20, 482), (.high, 1, 7), (.high, 40, 1273),
        ]
        for (level, version, bytes) in capacities {
            let full = try QRCode(encoding: String(repeating: "a", count: bytes), correction: level)
            #expect(full.version == version, "\(bytes) bytes at \(level)")
            #expect(full.size == version * 4 + 17)
            if version < 40 {
                #expect(try QRCode(encoding: String(repeating: "a", count: bytes + 1), correction: level).version == version + 1)
            }
        }
        #expect(throws: QRCodeError.self) { try QRCode(encoding: String(repeating: "a", count: 2332), correction: .medium) }
        #expect(try QRCode(encoding: "é", correction: .high).version == 1)
    }

    @Test("a version 1 code is module for module the one Nayuki's reference encoder makes")
    func referenceVersion1() throws {
        let code = try QRCode(encoding: "Gatehouse", correction: .medium)
        #expect(code.version == 1)
        #expect(code.mask == 7)
        #expect(Self.rows(code) == [
            "#######...#...#######",
            "#.....#..####.#.....#",
            "#.###.#..#..#.#.###.#",
            "#.###.#...#...#.###.#",
            "#.###.#..##.#.#.###.#",
            "#.....#.##.##.#.....#",
            "#######.#.#.#.#######",
            ".........#.##........",
            "#..#.##.#.#..#.#.....",
            ".#.......#...#..##.##",
            "..#.#####.#.#..#.##.#",
            "....#..#.#.#..#..#...",
            "..#####.##..#..###.##",
            "........####.#.......",
            "#######..#...#.#####.",
            "#.....#.######..#....",
            "#.###.#..#.#.####..#.",
            "#.###.#.####...###.##",
            "#.###.#..##.#..####.#",
            "#.....#..##..####....",
            "#######.#..##....#.#.",
        ])
    }

    @Test("a version 7 code, with version information and interleaved blocks, matches Nayuki's encoder")
    func referenceVersion7() throws {
        let text = "otpauth://totp/Gatehouse:alice%40example.com?secret=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGH&issuer=Gatehouse&x=1"
        let code = try QRCode(encoding: text, correction: .medium)
        #expect(code.version == 7)
        #expect(code.mask == 4)
        #expect(Self.rows(code) == [
            "#######.##..#.#.#.#.#..#.##...####..#.#######",
            "#.....#...###.#####..##.#..#...###.#..#.....#",
            "#.###.#...####...###..#..##...####.#..#.###.#",
            "#.###.#.##.##.#.....###..#..#.##...##.#.###.#",
            "#.###.#.#...#..#..#.########.##..####.#.###.#",
            "#.....#.##...##.#.###...#..#.#........#.....#",
            "#######.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#######",
            "........#..#.#.#...##...#.##.###.............",
            "#...#.##########..##########..#.##########..#",
            ".#.#...#.#..#..#.###....#.##.##....##.##.##..",
            ".#.#.##..#.#..#..#...#..#.#.#..#.#.####.##.#.",
            ".##..#..###.#.###.###.####.....##.##...#.#.##",
            "##..#.##.#.#####.###...#.##..#####....##.#...",
            "##..#...#..###..........###..##.#..##.##...#.",
            "#.######.##..##.###...#..###..####.#..#.#.##.",
            "#.#......#...#...#.#.##..#....#####.#####...#",
            ".#.##.##..####..###.##..#.#..#..###....#..#.#",
            "###.#..##..##.....#.#.#.##########..#.#.#..##",
            "...#..##..###.##.....#...#####.#..####.....#.",
            ".##.#...#.#..##.#.##..###..#.#..######.#....#",
            "#.#.#####.#...#.#########.##.#..##..######.#.",
            "#.###...###.##.##.#.#...###.######..#...###..",
            "#####.#.#.##..##..###.#.#..####.#...#.#.##...",
            "...##...##.#.#.####.#...####.###...##...#..#.",
            "..#.#########....#.######..#.##.##########..#",
            ".#...#.####.###.#.#...#.#.#..###.#....##..##.",
            "...#..###..#.#.#.##...#####.#..#....##.###.#.",
            "#.#.##.#....##.####.###..##..#..#..#####...#.",
            ".#.##.#.#...##....#..#.#..##.#..#.#...###..##",
            ".#..##.##..#.##....##...#.#.###..#..####.#.#.",
            "####.##..#.##.##..#.###.....######.#.#..##...",
            ".##.....#.##..##.#.....#.#.....##.#.#.###....",
            ".#.#..##.##.#..##..###.###...#..#...#..##.##.",
            "##..##.####..#...#.#....###.###..#..#.##..###",
            "....#.#...###.#.###....#.########.####....##.",
            ".####..#..#.....#...##...##.....#.#..####..#.",
            "#..##.##.#..###...########.#.##.#...######.#.",
            "........#..#..##.#.##...#..####.##..#...#.##.",
            "#######.#..#######..#.#.#..#####.#.##.#.##...",
            "#.....#..#..#......##...##...###..###...#..#.",
            "#.###.#.#.##.#.#.########.##....#..######...#",
            "#.###.#...##.#.####.####..##..#.##.#.##..##..",
            "#.###.#..###..#..###.##..####.##.#.#....#..#.",
            "#.....#...#..#.###..####...#....######..#....",
            "#######.#..##.###.#.##.##.#..##.###.#.####..#",
        ])
    }

    @Test("the mask chosen by the penalty rules is the one Nayuki's encoder chooses")
    func maskChoice() throws {
        let uri = "otpauth://totp/Gatehouse:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Gatehouse"
        let cases: [(String, QRErrorCorrection, version: Int, mask: Int)] = [
            ("a", .low, 1, 0), ("a", .medium, 1, 5), ("a", .quartile, 1, 0), ("a", .high, 1, 6),
            ("Gatehouse", .low, 1, 0), ("Gatehouse", .medium, 1, 7), ("Gatehouse", .quartile, 1, 6), ("Gatehouse", .high, 2, 6),
            ("https://example.com/", .low, 2, 7), ("https://example.com/", .medium, 2, 6), ("https://example.com/", .quartile, 2, 7), ("https://example.com/", .high, 3, 3),
            ("Grüße, 世界", .low, 1, 2), ("Grüße, 世界", .medium, 2, 2), ("Grüße, 世界", .quartile, 2, 2), ("Grüße, 世界", .high, 3, 7),
            (uri, .low, 5, 1), (uri, .medium, 6, 6), (uri, .quartile, 7, 5), (uri, .high, 9, 2),
            (String(repeating: "x", count: 100), .low, 5, 0), (String(repeating: "x", count: 100), .medium, 6, 3),
            (String(repeating: "x", count: 100), .quartile, 8, 0), (String(repeating: "x", count: 100), .high, 10, 0),
            (String(repeating: "The quick brown fox jumps over the lazy dog", count: 5), .low, 9, 1),
            (String(repeating: "The quick brown fox jumps over the lazy dog", count: 5), .medium, 11, 2),
            (String(repeating: "The quick brown fox jumps over the lazy dog", count: 5), .quartile, 13, 4),
            (String(repeating: "The quick brown fox jumps over the lazy dog", count: 5), .high, 15, 7),
            (String(repeating: "0123456789", count: 30), .low, 11, 2), (String(repeating: "0123456789", count: 30), .medium, 13, 2),
            (String(repeating: "0123456789", count: 30), .quartile, 16, 2), (String(repeating: "0123456789", count: 30), .high, 18, 2),
        ]
        for (text, level, version, mask) in cases {
            let code = try QRCode(encoding: text, correction: level)
            #expect(code.version == version && code.mask == mask, "\(text.prefix(20))… at \(level)")
        }
    }

    @Test("a forced mask is used, and each mask gives a different matrix")
    func forcedMask() throws {
        let matrices = try (0..<8).map { mask in
            let code = try QRCode(encoding: "Gatehouse", correction: .medium, mask: mask)
            #expect(code.mask == mask)
            return Self.rows(code)
        }
        #expect(Set(matrices).count == 8)
        #expect(throws: QRCodeError.self) { try QRCode(encoding: "x", mask: 8) }
    }

    @Test("the SVG is one labelled image: viewBox, white background, a single path of the dark modules, no script")
    func svg() throws {
        let code = try QRCode(encoding: "Gatehouse", correction: .medium)
        let svg = code.svg(label: "Scan <this> & \"that\"", moduleSize: 5, quietZone: 4)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 29 29\" width=\"145\" height=\"145\""))
        #expect(svg.contains("role=\"img\""))
        #expect(svg.contains("aria-label=\"Scan &lt;this&gt; &amp; &quot;that&quot;\""))
        #expect(svg.contains("<rect width=\"29\" height=\"29\" fill=\"#fff\"/>"))
        #expect(svg.components(separatedBy: "<path").count == 2)
        #expect(!svg.lowercased().contains("script"))
        #expect(svg.hasSuffix("</svg>"))
        let path = try #require(svg.split(separator: "d=\"").last?.split(separator: "\"").first)
        let runLengths = path.split(separator: "z").map { run in Int(run.split(separator: "h")[1].dropLast(2))! }
        let dark = (0..<code.size).reduce(0) { sum, y in sum + (0..<code.size).count(where: { code.isDark(x: $0, y: y) }) }
        #expect(runLengths.reduce(0, +) == dark)
        #expect(path.hasPrefix("M4 4h7v1h-7z"))
    }

    @Test("outside the matrix every module is light")
    func quietZone() throws {
        let code = try QRCode(encoding: "a")
        #expect(code.isDark(x: 0, y: 0))
        #expect(!code.isDark(x: -1, y: 0) && !code.isDark(x: 0, y: code.size) && !code.isDark(x: code.size, y: 3))
    }
}
