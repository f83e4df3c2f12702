import Foundation
import GatehouseCore
import GatehouseStore
import GatehouseTestSupport
import Testing

@Suite("QR Codes read back with zxing-cpp")
struct QRCodeDecodingTests {
    /// Rasterises the SVG's single path (the `M x y h n v1 h-n z` runs it is made of) with Pillow
    /// on the SVG's white background, and returns what zxing-cpp reads from the image, with
    /// the version and error-correction level it reports.
    static let decoder = """
        import re, sys, zxingcpp
        from PIL import Image, ImageDraw
        svg = open(sys.argv[1]).read()
        side = int(re.search(r'viewBox="0 0 (\\d+) \\d+"', svg).group(1))
        scale = 3
        image = Image.new("L", (side * scale, side * scale), 255)
        draw = ImageDraw.Draw(image)
        (path,) = re.findall(r'<path[^>]* d="([^"]*)"', svg)
        for x, y, n, back in re.findall(r'M(\\d+) (\\d+)h(\\d+)v1h-(\\d+)z', path):
            assert n == back
            x, y, n = int(x), int(y), int(n)
            draw.rectangle([x * scale, y * scale, (x + n) * scale - 1, (y + 1) * scale - 1], fill=0)
        assert re.sub(r'M\\d+ \\d+h\\d+v1h-\\d+z', '', path) == ''
        results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        assert len(results) == 1, f"{len(results)} codes found"
        sys.stdout.write(results[0].text + "\\n" + results[0].ec_level)
        """

    /// What zxing-cpp reads from the SVG of `text` at `level` (and `mask`, if given), and the code.
    static func roundTrip(_ text: String, _ level: QRErrorCorrection = .medium, mask: Int? = nil) async throws -> (text: String, ecLevel: String, code: QRCode) {
        let code = try QRCode(encoding: text, correction: level, mask: mask)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.file("code.svg")
        try code.svg(label: "QR code").write(toFile: file, atomically: true, encoding: .utf8)
        let lines = try await runPython(decoder, arguments: [file]).components(separatedBy: "\n")
        return (lines[0], lines[1], code)
    }

    @Test("a realistic otpauth URI, as the setup page shows it, reads back")
    func otpauthURI() async throws {
        let uri = TOTPAuthenticator(secret: TOTPSecret.generate()).otpauthURI(issuer: "Gatehouse", account: "alice.liddell@example.com")
        #expect((100...160).contains(uri.utf8.count))
        let result = try await Self.roundTrip(uri)
        #expect(result.text == uri)
        #expect(result.ecLevel == "M")
    }

    @Test("a short text reads back at every error-correction level")
    func short() async throws {
        for (level, name) in [(QRErrorCorrection.low, "L"), (.medium, "M"), (.quartile, "Q"), (.high, "H")] {
            let result = try await Self.roundTrip("otpauth://totp/a?secret=MY", level)
            #expect(result.text == "otpauth://totp/a?secret=MY")
            #expect(result.ecLevel == name)
        }
    }

    @Test("text near the version 20 capacity reads back, and so does non-ASCII UTF-8")
    func long() async throws {
        let text = "otpauth://totp/Gatehouse:alice?secret=" + String(repeating: "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", count: 19) + "&x=" + String(repeating: "7", count: 17)
        #expect(text.utf8.count == 666)
        let result = try await Self.roundTrip(text)
        #expect(result.code.version == 20)
        #expect(result.text == text)
        let unicode = try await Self.roundTrip("Grüße aus Köln, 東京 и Москва ✓")
        #expect(unicode.text == "Grüße aus Köln, 東京 и Москва ✓")
    }

    @Test("a code filled to capacity reads back in every version from 1 to 20, each mask used")
    func everyVersion() async throws {
        let capacities = [14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666]
        for (index, capacity) in capacities.enumerated() {
            let version = index + 1
            let text = String((0..<capacity).map { Character(UnicodeScalar(UInt8(0x21 + ($0 * 7 + version) % 90))) })
            let result = try await Self.roundTrip(text, .medium, mask: version % 8)
            #expect(result.code.version == version && result.code.mask == version % 8)
            #expect(result.text == text, "version \(version)")
        }
    }
}
