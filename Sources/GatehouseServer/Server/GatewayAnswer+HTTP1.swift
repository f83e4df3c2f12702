import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTP1

extension GatewayAnswer {
    /// The answer's head as HTTP/1, with `Content-Length` and `Date`.
    func http1Head(date: String, extraHeaders: KeyValuePairs<String, String> = [:]) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(self.headers.count + 2 + extraHeaders.count)
        for field in self.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Date", value: date)
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        return HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
    }

    /// The answer's body to a request with `method`: none for HEAD or an empty body.
    func http1Body(method: HTTPRequest.Method) -> ByteBuffer? {
        method == .head || body.isEmpty ? nil : ByteBuffer(string: body)
    }
}
