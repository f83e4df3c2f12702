import GatehouseCore
import Logging

/// Where finished log lines go: ``StandardErrorLogOutput`` in the process, a collector in tests.
public protocol LogLineOutput: Sendable {
    /// Takes one line (newline included); must not block the caller on I/O.
    func write(_ line: [UInt8])
}

/// Gatehouse's log handler: one ``LogLine`` per record, `text` or `json` (`log.format`),
/// handed to a ``LogLineOutput``. The handler writes whatever metadata it is given, so keeping
/// secrets out of the log is the callers' job: no token, password or cookie is ever put in
/// metadata or a message (I1; the access line is built by `AccessLog` from method, path
/// without query, status, time, request id and transport only).
public struct GatehouseLogHandler: LogHandler {
    /// Lowest level written.
    public var logLevel: Logger.Level = .info
    /// Metadata on every line of this logger (`request_id` on a request's logger).
    public var metadata: Logger.Metadata = [:]
    /// Contextual metadata, asked for on every line.
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: LogFormat
    private let output: any LogLineOutput

    /// A handler for the logger `label`.
    public init(label: String, format: LogFormat, output: any LogLineOutput, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        output.write(
            LogLine.format(
                format, timestamp: .now(), level: event.level, label: label, message: event.message.description,
                metadata: Self.merge(base: metadata, provider: metadataProvider, explicit: event.metadata, error: event.error)
            )
        )
    }

    /// The line's metadata: the logger's, then the provider's, then the call's, later ones
    /// winning; an error as `error.message` and `error.type`, as `StreamLogHandler` writes it.
    static func merge(base: Logger.Metadata, provider: Logger.MetadataProvider?, explicit: Logger.Metadata?, error: (any Error)?) -> Logger.Metadata {
        let provided = provider?.get() ?? [:]
        var metadata: Logger.Metadata
        if provided.isEmpty, let explicit, base.isEmpty {
            metadata = explicit
        } else {
            metadata = base
            if !provided.isEmpty { metadata.merge(provided) { $1 } }
            if let explicit, !explicit.isEmpty { metadata.merge(explicit) { $1 } }
        }
        if let error {
            metadata["error.message"] = "\(error)"
            metadata["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        return metadata
    }
}
