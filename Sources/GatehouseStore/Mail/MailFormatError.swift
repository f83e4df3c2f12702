/// Why a mail address, header or message was refused before anything was sent: a stable
/// snake_case code for programs and a message for people.
public struct MailFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable, for programs: `invalid_address`, `header_injection`.
    public let code: String
    /// For people.
    public let message: String

    /// Creates an error.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// The text is not a plain `local@domain` address (or `Name <local@domain>`).
    public static func invalidAddress(_ detail: String) -> MailFormatError {
        MailFormatError(code: "invalid_address", message: detail)
    }

    /// A header value holds a line break or another control character: it could add headers.
    public static func headerInjection(_ field: String) -> MailFormatError {
        MailFormatError(code: "header_injection", message: "The \(field) contains a line break or control character.")
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
