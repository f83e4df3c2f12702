#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import GatehouseCore
import Synchronization

/// An instant of the wall clock, written as RFC 3339 in UTC with milliseconds,
/// `2025-01-02T03:04:05.678Z`. The part up to the second is formatted once per second and
/// shared (``SecondPrefixCache``); only the milliseconds are written per line.
public struct LogTimestamp: Sendable, Equatable {
    /// Seconds since 1970 (UTC).
    public var seconds: Int
    /// Milliseconds within the second, 0–999.
    public var milliseconds: Int

    /// A given instant.
    public init(seconds: Int, milliseconds: Int) {
        self.seconds = seconds
        self.milliseconds = milliseconds
    }

    /// The wall clock now: one `clock_gettime`, no allocation.
    public static func now() -> LogTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return LogTimestamp(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec / 1_000_000))
    }

    /// Appends the 24 bytes of the timestamp.
    public func append(to bytes: inout [UInt8], cache: SecondPrefixCache = .shared) {
        cache.appendPrefix(of: seconds, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(milliseconds / 100))
        bytes.append(UInt8(ascii: "0") + UInt8(milliseconds / 10 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(milliseconds % 10))
        bytes.append(UInt8(ascii: "Z"))
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of the last second asked for, recomputed only when the second changes:
/// every log line of a second shares one formatting, behind a lock held for a 19-byte copy.
public final class SecondPrefixCache: Sendable {
    /// The process's cache.
    public static let shared = SecondPrefixCache()

    private let state = Mutex<(second: Int, prefix: [UInt8])>((Int.min, []))

    /// An empty cache (tests use their own).
    public init() {}

    /// Appends the formatted second `seconds`.
    public func appendPrefix(of seconds: Int, to bytes: inout [UInt8]) {
        state.withLock { state in
            if state.second != seconds {
                state = (seconds, Self.format(seconds))
            }
            bytes.append(contentsOf: state.prefix)
        }
    }

    /// Formats a second since 1970 as `YYYY-MM-DDTHH:MM:SS` (UTC).
    static func format(_ seconds: Int) -> [UInt8] {
        let time = CivilTime(secondsSince1970: seconds)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(19)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var value = max(value, 0)
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                value %= divisor
                divisor /= 10
            }
        }
        digits(time.year, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(time.month, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(time.day, 2)
        bytes.append(UInt8(ascii: "T"))
        digits(time.hour, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(time.minute, 2)
        bytes.append(UInt8(ascii: ":"))
        digits(time.second, 2)
        return bytes
    }
}
