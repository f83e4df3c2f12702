import Foundation

/// Standard error for log lines, written by a thread of its own: a logging call only appends
/// to a bounded queue, so that no caller, an event loop above all (I4), ever waits on a slow
/// or full pipe. Past `capacity` waiting lines, new lines are dropped and counted, and the
/// count is written once the reader catches up: availability of the gateway before
/// completeness of its log.
final class StandardErrorLogOutput: TextOutputStream, @unchecked Sendable {
    /// The process's one output; its thread starts on first use.
    static let shared = StandardErrorLogOutput(capacity: 10_000)

    private let capacity: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [String] = []
    private var dropped = 0
    private var writing = false

    private init(capacity: Int) {
        self.capacity = capacity
        let thread = Thread { [self] in drainForever() }
        thread.name = "gatehouse-log"
        thread.start()
    }

    /// Queues one formatted line (called by `StreamLogHandler`); never blocks on the pipe.
    func write(_ string: String) {
        condition.lock()
        if queue.count < capacity {
            queue.append(string)
        } else {
            dropped += 1
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until every queued line has been written, for at most `timeout`: before exit.
    func flush(timeout: TimeInterval = 2) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        while !queue.isEmpty || dropped > 0 || writing, condition.wait(until: deadline) {}
        condition.unlock()
    }

    private func drainForever() {
        while true {
            condition.lock()
            while queue.isEmpty, dropped == 0 { condition.wait() }
            var lines = queue
            queue.removeAll(keepingCapacity: true)
            let lost = dropped
            dropped = 0
            writing = true
            condition.unlock()
            if lost > 0 { lines.append("gatehouse: \(lost) log lines dropped: standard error was not being read fast enough\n") }
            Self.writeAll(lines.joined())
            condition.lock()
            writing = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Writes to file descriptor 2, blocking this thread only, through partial writes.
    private static func writeAll(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
