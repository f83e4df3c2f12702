import GatehouseCore
import Logging
import NIOConcurrencyHelpers

/// One limit to check: the limit, its name (`login_per_ip`, …) and what it counts (an IP, an
/// account).
public struct RateCheck: Sendable, Equatable {
    /// The configuration key's last part, also the Redis key's.
    public var name: String
    /// The limit.
    public var limit: RateLimit
    /// What is counted: a client IP or an account's bucket.
    public var subject: String

    /// Creates a check; `nil` when the limit is off.
    public init?(_ name: String, _ limit: RateLimit?, subject: String) {
        guard let limit else { return nil }
        self.name = name
        self.limit = limit
        self.subject = subject
    }
}

/// What checking limits found.
public enum RateVerdict: Sendable, Equatable {
    /// Under every limit; the attempt was counted.
    case allowed
    /// Over `name`'s limit: retry in `retryAfter` seconds (≥ 1). `first` is true for the first
    /// refused attempt of the window, the one that is audited.
    case limited(name: String, retryAfter: Int, first: Bool)
}

/// Counts attempts against ``RateLimit``s (SPEC §2.4): in Redis, shared by every instance,
/// each check one atomic script; in process while Redis cannot answer.
///
/// Checks are made in order and stop at the first limit exceeded, so an attempt refused for
/// its IP is not counted against the account (an attacker cannot spend a victim's allowance
/// from an address that is already refused).
public final class RateLimiter: Sendable {
    private let redis: RedisClient?
    private let local = NIOLockedValueBox(LocalRateCounts())
    private let logger: Logger

    /// A limiter counting in `redis`, or only in process without one.
    public init(redis: RedisClient?, logger: Logger) {
        self.redis = redis
        self.logger = logger
    }

    /// Counts one attempt against each of `checks`, in order, up to the first one over its limit.
    public func check(_ checks: [RateCheck]) async -> RateVerdict {
        guard !checks.isEmpty else { return .allowed }
        if let redis {
            do {
                return try await check(checks, in: redis)
            } catch {
                // I2: Redis down never fails the request; the instance counts alone meanwhile.
                logger.debug("rate limits counted in process", metadata: ["error": "\(error)"])
            }
        }
        return local.withLockedValue { $0.check(checks, now: .now) }
    }

    /// INCR each key in order; a key's window (PEXPIRE) starts with its first attempt; stop at
    /// the first count past its limit. Returns {index (1-based, 0 = allowed), ms left, count}.
    static let script = """
        for i, key in ipairs(KEYS) do
          local limit = tonumber(ARGV[2 * i - 1])
          local period = tonumber(ARGV[2 * i])
          local count = redis.call('INCR', key)
          local left = redis.call('PTTL', key)
          if left < 0 then
            redis.call('PEXPIRE', key, period)
            left = period
          end
          if count > limit then return {i, left, count} end
        end
        return {0, 0, 0}
        """

    private func check(_ checks: [RateCheck], in redis: RedisClient) async throws -> RateVerdict {
        var command = ["EVAL", Self.script, String(checks.count)]
        command += checks.map { CacheKeys.rate($0.name, subject: $0.subject) }
        for check in checks { command += [String(check.limit.count), String(check.limit.period.milliseconds)] }
        let reply = try await redis.pipeline([command])[0]
        guard case .array(let values) = reply, values.count == 3, case .integer(let index) = values[0],
            case .integer(let left) = values[1], case .integer(let count) = values[2]
        else {
            throw RedisError.server("\(reply)")
        }
        guard index > 0, Int(index) <= checks.count else { return .allowed }
        let check = checks[Int(index) - 1]
        return .limited(name: check.name, retryAfter: Self.seconds(milliseconds: left), first: count == check.limit.count + 1)
    }

    /// Whole seconds to wait for `milliseconds`, rounded up, at least 1.
    static func seconds(milliseconds: Int64) -> Int {
        max(1, Int((milliseconds + 999) / 1000))
    }
}

/// The in-process counts used while Redis cannot answer: the same windows, per instance.
struct LocalRateCounts {
    private struct Window {
        var count: Int
        var endsAt: ContinuousClock.Instant
    }

    private var windows: [String: Window] = [:]
    /// Past this many windows, closed ones are dropped before another is opened.
    static let pruneAbove = 100_000

    mutating func check(_ checks: [RateCheck], now: ContinuousClock.Instant) -> RateVerdict {
        if windows.count > Self.pruneAbove { windows = windows.filter { $0.value.endsAt > now } }
        for check in checks {
            let key = check.name + "\u{0}" + check.subject
            var window = windows[key].flatMap { $0.endsAt > now ? $0 : nil } ?? Window(count: 0, endsAt: now + check.limit.period)
            window.count += 1
            windows[key] = window
            if window.count > check.limit.count {
                let left = (window.endsAt - now).milliseconds
                return .limited(name: check.name, retryAfter: RateLimiter.seconds(milliseconds: left), first: window.count == check.limit.count + 1)
            }
        }
        return .allowed
    }
}
