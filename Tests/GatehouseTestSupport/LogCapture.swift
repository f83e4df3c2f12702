import Logging
import NIOConcurrencyHelpers

/// Collects every log line a logger writes, so tests can assert that no secret was logged.
public final class LogCapture: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    /// An empty capture.
    public init() {}

    /// A logger at `trace` level (the most output) writing into this capture.
    public func logger(label: String = "gatehouse-test") -> Logger {
        var logger = Logger(label: label) { _ in CapturingLogHandler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    /// Every line so far, message and metadata.
    public var text: String { lines.withLockedValue { $0.joined(separator: "\n") } }

    /// Number of lines so far.
    public var count: Int { lines.withLockedValue { $0.count } }

    func append(_ line: String) {
        lines.withLockedValue { $0.append(line) }
    }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(rendered) \(event.source)")
    }
}
