import Foundation

extension Process {
    /// Ends the process whatever state it is in: SIGTERM, up to `grace` for it to exit, then
    /// SIGKILL, and waits until it is gone. Blocks the calling thread; safe to call again and
    /// from `defer`, so that no test leaves a process running whatever way it ends.
    public func terminate(grace: Duration) {
        guard isRunning else { return }
        kill(processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        if isRunning { kill(processIdentifier, SIGKILL) }
        waitUntilExit()
    }
}
