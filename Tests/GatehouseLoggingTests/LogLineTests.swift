import Foundation
import GatehouseCore
import GatehouseLogging
import Logging
import Synchronization
import Testing

/// Lines a handler wrote, kept in memory.
final class CollectedLines: LogLineOutput {
    private let lines = Mutex<[String]>([])

    func write(_ line: [UInt8]) {
        lines.withLock { $0.append(String(decoding: line, as: UTF8.self)) }
    }

    var all: [String] { lines.withLock { $0 } }
}

/// 2001-09-09T01:46:40.007Z.
let fixedTime = LogTimestamp(seconds: 1_000_000_000, milliseconds: 7)

func jsonObject(_ line: [UInt8]) throws -> [String: Any] {
    #expect(line.last == UInt8(ascii: "\n"))
    #expect(line.dropLast().firstIndex(of: UInt8(ascii: "\n")) == nil, "one record, one line")
    return try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
}

@Suite("Log lines")
struct LogLineTests {
    @Test("JSON strings escape quotes, backslashes and control characters and pass non-ASCII as UTF-8")
    func jsonEscaping() throws {
        let awkward = "a \"quoted\" back\\slash\nnew line\r\ttab \u{01}\u{1F}\u{7F} é 日本 🔑"
        var bytes: [UInt8] = []
        LogLine.appendJSONString(awkward, to: &bytes)
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #""a \"quoted\" back\\slash\nnew line\r\ttab \u0001\u001f"# + "\u{7F} é 日本 🔑\""
        )
        #expect(!bytes.contains { $0 < 0x20 })
        let parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed) as? String
        #expect(parsed == awkward)
    }

    @Test("a JSON line has ts, level and msg, then every metadata key, values as strings")
    func jsonLine() throws {
        let metadata: Logger.Metadata = [
            "path": "/a\"b", "status": .stringConvertible(404), "request_id": "abc", "msg": "clash",
            "list": ["x", .stringConvertible(1)], "nested": ["k": "v"],
        ]
        let line = LogLine.format(.json, timestamp: fixedTime, level: .info, label: "gatehouse", message: "request\nsecond", metadata: metadata)
        let object = try jsonObject(line)
        #expect(object["ts"] as? String == "2001-09-09T01:46:40.007Z")
        #expect(object["level"] as? String == "info")
        #expect(object["msg"] as? String == "request\nsecond")
        #expect(object["_msg"] as? String == "clash")
        #expect(object["path"] as? String == "/a\"b")
        #expect(object["status"] as? String == "404")
        #expect(object["request_id"] as? String == "abc")
        #expect(object["list"] as? [String] == ["x", "1"])
        #expect(object["nested"] as? [String: String] == ["k": "v"])
        #expect(
            String(decoding: line, as: UTF8.self)
                == #"{"ts":"2001-09-09T01:46:40.007Z","level":"info","msg":"request\nsecond","list":["x","1"],"_msg":"clash","nested":{"k":"v"},"path":"/a\"b","request_id":"abc","status":"404"}"#
                + "\n"
        )
    }

    @Test("a text line is timestamp, level, label, message, then key=value sorted by key")
    func textLine() {
        let metadata: Logger.Metadata = [
            "status": .stringConvertible(200), "method": "GET", "path": "/x", "request_id": "r1", "served": "router",
            "error": "connection refused\nby peer", "empty": "",
        ]
        let line = LogLine.format(.text, timestamp: fixedTime, level: .warning, label: "gatehouse", message: "upstream failed", metadata: metadata)
        #expect(
            String(decoding: line, as: UTF8.self)
                == #"2001-09-09T01:46:40.007Z warning gatehouse: upstream failed empty="" error="connection refused\nby peer" method=GET path=/x request_id=r1 served=router status=200"#
                + "\n"
        )
    }

    @Test("the per-second prefix agrees with gmtime for instants across the calendar")
    func timestamps() {
        let cache = SecondPrefixCache()
        var instants = [0, 59, 951_782_400, 951_868_799, 1_000_000_000, 1_709_164_800, 4_102_444_800 - 1, 4_102_444_800]
        var seed: UInt64 = 42
        for _ in 0..<2_000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            instants.append(Int(seed >> 30))  // up to about 2514
        }
        for seconds in instants {
            var time = time_t(seconds)
            var parts = tm()
            gmtime_r(&time, &parts)
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec
            )
            var bytes: [UInt8] = []
            cache.appendPrefix(of: seconds, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == expected, "\(seconds)")
        }
        var bytes: [UInt8] = []
        LogTimestamp(seconds: 59, milliseconds: 999).append(to: &bytes, cache: cache)
        #expect(String(decoding: bytes, as: UTF8.self) == "1970-01-01T00:00:59.999Z")
    }

    @Test("the handler merges the logger's metadata with the call's, the call winning")
    func handlerMetadata() throws {
        let output = CollectedLines()
        var logger = Logger(label: "test") { label in GatehouseLogHandler(label: label, format: .json, output: output) }
        logger.logLevel = .info
        logger[metadataKey: "request_id"] = "from-logger"
        logger.debug("not written")
        logger.info("request", metadata: ["status": "200"])
        logger.info("override", metadata: ["request_id": "from-call"])
        let lines = output.all
        #expect(lines.count == 2)
        let first = try jsonObject(Array(lines[0].utf8))
        #expect(first["request_id"] as? String == "from-logger")
        #expect(first["status"] as? String == "200")
        let second = try jsonObject(Array(lines[1].utf8))
        #expect(second["request_id"] as? String == "from-call")
    }
}
