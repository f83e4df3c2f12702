import Foundation
import GatehouseCore
import Testing

@Suite("HTTP Date header")
struct HTTPDateTests {
    @Test("IMF-fixdate matches Foundation's formatter across centuries, leap days and the epoch")
    func matchesFoundation() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var generator = SystemRandomNumberGenerator()
        let fixed: [Int64] = [0, 59, 86_399, 86_400, 951_782_400, 951_868_799, 1_795_577_008, 4_107_542_400, 253_402_300_799]
        let random = (0..<2000).map { _ in Int64.random(in: 0...4_102_444_800, using: &generator) }
        for seconds in fixed + random {
            #expect(HTTPDate.imfFixdate(secondsSince1970: seconds) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))), "\(seconds)")
        }
        #expect(HTTPDate.imfFixdate(secondsSince1970: 1_795_577_008) == "Wed, 25 Nov 2026 03:23:28 GMT")
    }
}
