import GatehouseCore
import HTTPTypes
import Hummingbird

extension Response {
    /// A JSON response with `body` and optional extra headers.
    static func json(_ status: HTTPResponse.Status, _ body: JSONText, headers: HTTPFields = [:]) -> Response {
        var allHeaders = headers
        allHeaders[.contentType] = "application/json; charset=utf-8"
        SecurityHeaders.apply(to: &allHeaders)
        return Response(status: status, headers: allHeaders, body: .init(byteBuffer: ByteBuffer(string: body.string)))
    }

    /// The documented JSON body for an ``AuthError``.
    static func error(_ error: AuthError, headers: HTTPFields = [:]) -> Response {
        var allHeaders = headers
        if let retryAfter = error.retryAfter { allHeaders[.retryAfter] = String(retryAfter) }
        return .json(HTTPResponse.Status(code: error.status), error.json, headers: allHeaders)
    }
}

extension JSONText {
    /// `{"message": text}`.
    static func message(_ text: String) -> JSONText {
        var object = JSONText()
        object.add("message", text)
        return object
    }

    /// `{"status": text}`.
    static func status(_ text: String) -> JSONText {
        var object = JSONText()
        object.add("status", text)
        return object
    }
}
