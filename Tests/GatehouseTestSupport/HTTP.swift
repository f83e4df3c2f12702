import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore

/// A response as the tests look at it.
public struct HTTPResult: Sendable {
    /// Status code.
    public let status: Int
    /// Headers.
    public let headers: HTTPFields
    /// Body as text.
    public let body: String

    /// Every `Set-Cookie` value.
    public var setCookies: [String] { headers[values: .setCookie] }

    /// The session token set by the response for the cookie `name`, if any non-empty one.
    public func sessionToken(name: String = "gatehouse_session") -> String? {
        setCookies.compactMap { cookie -> String? in
            let pair = cookie.split(separator: ";").first ?? ""
            guard pair.hasPrefix("\(name)=") else { return nil }
            let value = String(pair.dropFirst(name.count + 1))
            return value.isEmpty ? nil : value
        }.first
    }

    /// The body parsed as a JSON object.
    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
}

/// Something requests can be sent to: the router, a live in-process server, or a process.
public protocol HTTPTarget: Sendable {
    /// Sends one request and returns the whole response.
    func send(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields, body: String?) async throws -> HTTPResult
}

extension HTTPTarget {
    /// A JSON request.
    public func json(_ method: HTTPRequest.Method, _ path: String, _ body: String, cookie: String? = nil, headers: HTTPFields = [:]) async throws -> HTTPResult {
        var all = headers
        all[.contentType] = "application/json"
        if let cookie { all[.cookie] = "gatehouse_session=\(cookie)" }
        return try await send(method, path, headers: all, body: body)
    }

    /// A request carrying only a session cookie.
    public func get(_ path: String, cookie: String? = nil) async throws -> HTTPResult {
        var headers = HTTPFields()
        if let cookie { headers[.cookie] = "gatehouse_session=\(cookie)" }
        return try await send(.get, path, headers: headers, body: nil)
    }

    /// `POST /auth/signup` with JSON credentials.
    public func signup(_ email: String, _ password: String) async throws -> HTTPResult {
        try await json(.post, "/auth/signup", Self.credentials(email, password))
    }

    /// `POST /auth/login` with JSON credentials.
    public func login(_ email: String, _ password: String, cookie: String? = nil) async throws -> HTTPResult {
        try await json(.post, "/auth/login", Self.credentials(email, password), cookie: cookie)
    }

    /// `POST /auth/logout` with a session cookie.
    public func logout(cookie: String?) async throws -> HTTPResult {
        var headers = HTTPFields()
        if let cookie { headers[.cookie] = "gatehouse_session=\(cookie)" }
        return try await send(.post, "/auth/logout", headers: headers, body: nil)
    }

    /// A JSON credentials body, escaped properly.
    public static func credentials(_ email: String, _ password: String) -> String {
        var object = JSONText()
        object.add("email", email)
        object.add("password", password)
        return object.string
    }
}

/// Sends requests through HummingbirdTesting's client (router or live in-process server).
public struct TestClientTarget: HTTPTarget {
    let client: any TestClientProtocol

    /// Wraps a client handed out by `app.test(...)`.
    public init(_ client: any TestClientProtocol) {
        self.client = client
    }

    public func send(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields, body: String?) async throws -> HTTPResult {
        let response = try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: String(buffer: response.body))
    }
}

/// Sends each request on a new TCP connection to `host:port`: a real client over loopback.
public struct SocketTarget: HTTPTarget {
    /// Host to connect to.
    public let host: String
    /// Port to connect to.
    public let port: Int

    /// A target at `host:port`.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// A target at `address` (`host:port`).
    public init(address: String) {
        let colon = address.lastIndex(of: ":")!
        self.host = String(address[..<colon])
        self.port = Int(address[address.index(after: colon)...])!
    }

    public func send(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields, body: String?) async throws -> HTTPResult {
        // HTTP/1.1 needs a Host header: the one given, else this target's address.
        var fields = headers
        let authority = fields[HTTPField.Name("Host")!] ?? "\(host):\(port)"
        fields[HTTPField.Name("Host")!] = nil
        let request = TestClient.Request(path, method: method, authority: authority, headers: fields, body: body.map { ByteBuffer(string: $0) })
        let response = try await TestClient.withClient(host: host, port: port) { client in try await client.execute(request) }
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: response.body.map { String(buffer: $0) } ?? "")
    }
}
