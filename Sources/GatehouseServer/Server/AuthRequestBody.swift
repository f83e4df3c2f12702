import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird

/// Reads the small JSON or form bodies of the auth API, turning every kind of bad input
/// into its documented error: 415, 413, 400 or 422.
struct AuthRequestBody {
    /// Largest accepted body (SPEC §2.1).
    static let maximumSize = 16 * 1024
    /// How much of an oversize body is read and discarded before answering 413.
    static let drainLimit = 1024 * 1024

    /// What a field held.
    enum Value {
        case string(String)
        case other
    }

    let fields: [String: Value]
    /// Whether the body was an HTML form rather than JSON.
    var isForm = false

    /// A string field, if present.
    func string(_ name: String) -> String? {
        if case .string(let value) = fields[name] { return value }
        return nil
    }

    /// Reads and parses the body of `request`.
    static func read(_ request: Request, context: GatehouseRequestContext) async throws -> AuthRequestBody {
        let type = mediaType(request.headers)
        guard type == "application/json" || type == "application/x-www-form-urlencoded" else {
            throw AuthError.unsupportedMediaType
        }
        let bytes = try await collect(request)
        if type == "application/json" {
            return try parseJSON(bytes)
        }
        return AuthRequestBody(fields: try parseForm(bytes).mapValues { .string($0) }, isForm: true)
    }

    /// Reads an HTML form's fields for the pages' adapter, leaving the body in `request` for
    /// the endpoint's handler to read again.
    static func readForm(_ request: inout Request) async throws -> [String: String] {
        let bytes = try await collect(request)
        request.body = RequestBody(buffer: ByteBuffer(bytes: bytes))
        return try parseForm(bytes)
    }

    /// The body's bytes, at most ``maximumSize``.
    private static func collect(_ request: Request) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maximumSize {
            throw AuthError.payloadTooLarge(limit: maximumSize)
        }
        // Read by hand rather than `collect(upTo:)`: an oversize body is drained (up to
        // `drainLimit`) so that the 413 reaches the client on a healthy connection instead of
        // being lost to a reset when the server closes with unread bytes.
        var buffer = ByteBuffer()
        var total = 0
        for try await part in request.body {
            total += part.readableBytes
            if total > maximumSize {
                if total > drainLimit { break }
                continue
            }
            buffer.writeImmutableBuffer(part)
        }
        guard total <= maximumSize else { throw AuthError.payloadTooLarge(limit: maximumSize) }
        return Array(buffer.readableBytesView)
    }

    private static func parseForm(_ bytes: [UInt8]) throws -> [String: String] {
        guard let text = String(validating: bytes, as: UTF8.self), let form = FormURLEncoded.parse(text) else {
            throw AuthError.malformedBody("The form body is not valid URL-encoded UTF-8.")
        }
        return form
    }

    /// Whether `headers` announce an HTML form body.
    static func isForm(_ headers: HTTPFields) -> Bool {
        mediaType(headers) == "application/x-www-form-urlencoded"
    }

    static func mediaType(_ headers: HTTPFields) -> String {
        (headers[.contentType] ?? "").split(separator: ";", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
    }

    /// Parses a JSON body strictly (``JSONValue``): a trailing comma, a comment, a duplicate key
    /// or bytes after the object are a malformed body, not a guess at what the client meant.
    static func parseJSON(_ bytes: [UInt8]) throws -> AuthRequestBody {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw AuthError.malformedBody("The body is not valid JSON: \(error).")
        }
        guard case .object(let members) = value else {
            throw AuthError.malformedBody("The body must be a JSON object.")
        }
        return AuthRequestBody(fields: members.mapValues { member in
            if case .string(let string) = member { return .string(string) }
            return .other
        })
    }

    /// The named string fields, or 422 naming each one that is missing or not a string.
    func strings(_ names: String...) throws -> [String] {
        var problems: [String: String] = [:]
        var values: [String] = []
        for name in names {
            switch fields[name] {
            case .string(let value): values.append(value)
            case .other: problems[name] = "Must be a string."
            case nil: problems[name] = "This field is required."
            }
        }
        guard problems.isEmpty else { throw AuthError.validation(problems) }
        return values
    }
}
