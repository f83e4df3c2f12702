import Foundation
import GatehouseCore
import Logging

/// Standard error for log lines, written by a thread of its own: a logging call only appends
/// its bytes to a bounded buffer, so that no caller, an event loop above all (I4), ever waits
/// on a slow or full pipe. Past `capacity` waiting lines, new lines are dropped and counted,
/// and the count is written once the reader catches up: availability of the gateway before
/// completeness of its log.
public final class StandardErrorLogOutput: LogLineOutput, @unchecked Sendable {
    /// The process's one output; its thread starts on first use.
    public static let shared = StandardErrorLogOutput(capacity: 10_000)

    private let capacity: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var pending: [UInt8] = []
    private var lines = 0
    private var dropped = 0
    private var writing = false
    private var noticeFormat = LogFormat.text

    private init(capacity: Int) {
        self.capacity = capacity
        pending.reserveCapacity(1 << 16)
        let thread = Thread { [self] in drainForever() }
        thread.name = "gatehouse-log"
        thread.start()
    }

    /// Queues one formatted line; never blocks on the pipe. Only the write that makes the
    /// buffer non-empty wakes the writer: while it writes, later lines just accumulate.
    public func write(_ line: [UInt8]) {
        condition.lock()
        let wasEmpty = lines == 0 && dropped == 0
        if lines < capacity {
            pending.append(contentsOf: line)
            lines += 1
        } else {
            dropped += 1
        }
        // `broadcast`, not `signal`: `flush` waits on the same condition.
        if wasEmpty { condition.broadcast() }
        condition.unlock()
    }

    /// The format of the line this output writes itself, the count of dropped lines: the
    /// handlers' format, so that a JSON log stays all JSON.
    public func setNoticeFormat(_ format: LogFormat) {
        condition.lock()
        noticeFormat = format
        condition.unlock()
    }

    /// Waits until every queued line has been written, for at most `timeout`: before exit.
    public func flush(timeout: TimeInterval = 2) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        while lines > 0 || dropped > 0 || writing, condition.wait(until: deadline) {}
        condition.unlock()
    }

    private func drainForever() {
        // Swapped with `pending` under the lock, so both buffers keep their capacity.
        var batch: [UInt8] = []
        batch.reserveCapacity(1 << 16)
        while true {
            condition.lock()
            while lines == 0, dropped == 0 { condition.wait() }
            condition.unlock()
            // Let the lines of the next millisecond join this batch: under load that is one
            // wake-up and one `write` per millisecond instead of one per line or two.
            usleep(1_000)
            condition.lock()
            swap(&batch, &pending)
            lines = 0
            let lost = dropped
            dropped = 0
            writing = true
            let format = noticeFormat
            condition.unlock()
            if lost > 0 {
                batch.append(
                    contentsOf: LogLine.format(
                        format, timestamp: .now(), level: .warning, label: "gatehouse",
                        message: "log lines dropped: standard error was not being read fast enough", metadata: ["dropped": "\(lost)"]
                    )
                )
            }
            Self.writeAll(batch)
            batch.removeAll(keepingCapacity: true)
            condition.lock()
            writing = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Writes to file descriptor 2, blocking this thread only, through partial writes.
    private static func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
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
