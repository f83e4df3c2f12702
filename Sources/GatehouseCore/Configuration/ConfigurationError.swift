/// A configuration problem, naming the key (or environment variable) at fault.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The dotted key, e.g. `redis.timeout`, or the file when the problem is the file itself.
    public var key: String
    /// What is wrong and what would be right.
    public var message: String

    /// Creates an error.
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    /// `key: message`, one line.
    public var description: String { "\(key): \(message)" }
}
