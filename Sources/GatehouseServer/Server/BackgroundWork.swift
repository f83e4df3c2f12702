import GatehouseStore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Work a request starts and does not wait for (the password-reset issuance after its 202),
/// tracked so that a graceful shutdown finishes it: on SIGTERM this service, shut down right
/// after the HTTP server has drained, waits for every such task, then commits the batched
/// `last_seen_at` writes, so that nothing a request started is lost.
final class BackgroundWork: Service, Sendable {
    private struct State {
        var running = 0
        var idle: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())
    let sqlite: SQLiteAuthStore
    let logger: Logger

    init(sqlite: SQLiteAuthStore, logger: Logger) {
        self.sqlite = sqlite
        self.logger = logger
    }

    /// Runs `body` in a task of its own, counted until it ends.
    func start(_ body: @escaping @Sendable () async -> Void) {
        state.withLockedValue { $0.running += 1 }
        Task {
            await body()
            let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                state.running -= 1
                guard state.running == 0 else { return [] }
                defer { state.idle = [] }
                return state.idle
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Tasks running now.
    var running: Int { state.withLockedValue { $0.running } }

    /// Returns once no task runs.
    func idle() async {
        await withCheckedContinuation { continuation in
            let now = state.withLockedValue { state -> Bool in
                if state.running == 0 { return true }
                state.idle.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func run() async throws {
        try? await gracefulShutdown()
        if running > 0 { logger.info("shutdown: waiting for background work", metadata: ["tasks": "\(running)"]) }
        await idle()
        do {
            try await sqlite.commitLastSeen()
        } catch {
            logger.error("shutdown: last-seen writes failed", metadata: ["error": "\(error)"])
        }
    }
}
