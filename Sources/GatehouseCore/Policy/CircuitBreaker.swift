/// Skips a failing dependency after repeated failures, then lets one probe through after a
/// cool-down (SPEC I2). Pure state: the caller supplies the time and keeps it under a lock.
public struct CircuitBreaker: Sendable, Equatable {
    /// Where the breaker stands.
    public enum State: Sendable, Equatable {
        /// Calls go through; `failures` in a row so far.
        case closed(failures: Int)
        /// Calls are skipped until `until`.
        case open(until: ContinuousClock.Instant)
        /// One probe call is in flight; the others are skipped.
        case halfOpen
    }

    /// Consecutive failures that open the breaker.
    public let threshold: Int
    /// How long it stays open before a probe.
    public let coolDown: Duration
    /// The current state.
    public private(set) var state: State = .closed(failures: 0)

    /// Creates a closed breaker.
    public init(threshold: Int = 5, coolDown: Duration = .seconds(1)) {
        self.threshold = threshold
        self.coolDown = coolDown
    }

    /// Whether a call may go ahead now; turns an expired open state into a half-open probe.
    public mutating func allow(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed:
            return true
        case .open(let until) where now >= until:
            state = .halfOpen
            return true
        case .open, .halfOpen:
            return false
        }
    }

    /// Records a successful call: the breaker closes.
    public mutating func recordSuccess() {
        state = .closed(failures: 0)
    }

    /// Records a failed call; returns `true` when this failure opened the breaker.
    @discardableResult
    public mutating func recordFailure(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed(let failures) where failures + 1 < threshold:
            state = .closed(failures: failures + 1)
            return false
        case .closed, .halfOpen:
            state = .open(until: now + coolDown)
            return true
        case .open:
            return false
        }
    }

    /// Whether calls are being skipped.
    public var isOpen: Bool {
        if case .closed = state { return false }
        return true
    }
}
