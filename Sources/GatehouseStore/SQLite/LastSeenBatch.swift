import Synchronization

/// Due `last_seen_at` writes waiting for one transaction.
///
/// A validation that finds a write due must not wait for it: with many sessions in use, one
/// committed (`synchronous=FULL`) transaction per due session would make the shared writer
/// the bottleneck of every instance. The writes are collected here, one per session (the
/// latest time wins), and ``SQLiteAuthStore`` commits them together a moment later. A batch
/// that is lost (a crash before the commit) only leaves `last_seen_at` older than it could be:
/// the session idles out earlier, never later.
final class LastSeenBatch: Sendable {
    private struct State {
        var pending: [String: Int64] = [:]
        var commitScheduled = false
    }

    private let state = Mutex(State())

    /// Adds a write; `true` when the caller must schedule the commit (none is scheduled yet).
    func add(sessionId: String, at milliseconds: Int64) -> Bool {
        state.withLock { state in
            state.pending[sessionId] = max(state.pending[sessionId] ?? milliseconds, milliseconds)
            guard !state.commitScheduled else { return false }
            state.commitScheduled = true
            return true
        }
    }

    /// Every pending write, leaving none; the next ``add(sessionId:at:)`` schedules a commit again.
    func take() -> [String: Int64] {
        state.withLock { state in
            let pending = state.pending
            state.pending = [:]
            state.commitScheduled = false
            return pending
        }
    }
}
