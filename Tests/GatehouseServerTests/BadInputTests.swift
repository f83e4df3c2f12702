import Foundation
import GatehouseTestSupport
import HTTPTypes
import Testing

/// One hostile request and the answer it must get.
struct BadRequest: Sendable, CustomStringConvertible {
    let name: String
    let contentType: String?
    let body: String
    let status: Int
    let error: String
    var fields: [String: String] = [:]

    var description: String { name }
}

@Suite("Bad input to signup and login gets its documented status and changes nothing")
struct BadInputTests {
    static let cases: [BadRequest] = [
        BadRequest(name: "malformed JSON", contentType: "application/json", body: #"{"email": "a@b.co", "#, status: 400, error: "malformed_body"),
        BadRequest(name: "JSON array", contentType: "application/json", body: #"["a@b.co", "password1"]"#, status: 400, error: "malformed_body"),
        BadRequest(name: "JSON string", contentType: "application/json", body: #""hello""#, status: 400, error: "malformed_body"),
        BadRequest(name: "empty JSON body", contentType: "application/json", body: "", status: 400, error: "malformed_body"),
        BadRequest(name: "JSON with a trailing comma", contentType: "application/json", body: #"{"email":"a@b.co","password":"password1",}"#, status: 400, error: "malformed_body"),
        BadRequest(name: "JSON with a block comment", contentType: "application/json", body: #"{"email":"a@b.co", /* c */ "password":"password1"}"#, status: 400, error: "malformed_body"),
        BadRequest(name: "JSON with a line comment", contentType: "application/json", body: "{\"email\":\"a@b.co\", // c\n\"password\":\"password1\"}", status: 400, error: "malformed_body"),
        BadRequest(name: "JSON with a duplicate key", contentType: "application/json", body: #"{"email":"a@b.co","password":"password1","email":"c@d.co"}"#, status: 400, error: "malformed_body"),
        BadRequest(name: "JSON with garbage after the object", contentType: "application/json", body: #"{"email":"a@b.co","password":"password1"} x"#, status: 400, error: "malformed_body"),
        BadRequest(name: "two JSON objects", contentType: "application/json", body: #"{"email":"a@b.co","password":"password1"}{}"#, status: 400, error: "malformed_body"),
        BadRequest(name: "JSON with single quotes", contentType: "application/json", body: #"{'email':'a@b.co','password':'password1'}"#, status: 400, error: "malformed_body"),
        BadRequest(name: "JSON with a byte-order mark", contentType: "application/json", body: "\u{FEFF}" + #"{"email":"a@b.co","password":"password1"}"#, status: 400, error: "malformed_body"),
        BadRequest(name: "invalid UTF-8 form", contentType: "application/x-www-form-urlencoded", body: "email=%FF&password=x", status: 400, error: "malformed_body"),
        BadRequest(name: "text/plain", contentType: "text/plain", body: "email=a@b.co", status: 415, error: "unsupported_media_type"),
        BadRequest(name: "no content type", contentType: nil, body: #"{"email":"a@b.co","password":"password1"}"#, status: 415, error: "unsupported_media_type"),
        BadRequest(name: "multipart", contentType: "multipart/form-data; boundary=x", body: "--x--", status: 415, error: "unsupported_media_type"),
        BadRequest(name: "missing both fields", contentType: "application/json", body: "{}", status: 422, error: "validation_error", fields: ["email": "This field is required.", "password": "This field is required."]),
        BadRequest(name: "missing password", contentType: "application/json", body: #"{"email":"a@b.co"}"#, status: 422, error: "validation_error", fields: ["password": "This field is required."]),
        BadRequest(name: "number as password", contentType: "application/json", body: #"{"email":"a@b.co","password":12345678}"#, status: 422, error: "validation_error", fields: ["password": "Must be a string."]),
        BadRequest(name: "null email", contentType: "application/json", body: #"{"email":null,"password":"password1"}"#, status: 422, error: "validation_error", fields: ["email": "Must be a string."]),
        BadRequest(name: "oversize body", contentType: "application/json", body: #"{"email":"a@b.co","password":"\#(String(repeating: "x", count: 17 * 1024))"}"#, status: 413, error: "payload_too_large"),
    ]

    @Test("signup and login", arguments: Transport.allCases, cases)
    func badRequests(transport: Transport, bad: BadRequest) async throws {
        try await TestGatehouse.run(transport) { api, gatehouse in
            let before = try await gatehouse.counts()
            for path in ["/auth/signup", "/auth/login"] {
                var headers = HTTPFields()
                if let contentType = bad.contentType { headers[.contentType] = contentType }
                let response = try await api.send(.post, path, headers: headers, body: bad.body)
                #expect(response.status == bad.status, "\(path)")
                if bad.contentType == "application/x-www-form-urlencoded" {
                    // A form is the pages' (SPEC §2.5): its page again, with the error.
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(response.body.contains(#"role="alert">The form body is not valid URL-encoded UTF-8."#))
                    #expect(!response.setCookies.contains { $0.hasPrefix("gatehouse_session") })
                    continue
                }
                #expect(response.json["error"] as? String == bad.error, "\(path)")
                #expect(response.json["message"] is String)
                if !bad.fields.isEmpty {
                    #expect(response.json["fields"] as? [String: String] == bad.fields)
                }
                #expect(response.setCookies.isEmpty)
            }
            #expect(try await gatehouse.counts() == before)
        }
    }

    @Test(
        "invalid emails at signup are 422 naming the email field",
        arguments: ["", "plainaddress", "a@b", "a b@example.com", "a@example..com", "<script>@example.com", String(repeating: "a", count: 300) + "@example.com"]
    )
    func invalidEmail(email: String) async throws {
        try await TestGatehouse.run { api, gatehouse in
            let response = try await api.signup(email, "a fine password")
            #expect(response.status == 422)
            #expect((response.json["fields"] as? [String: String])?["email"] == "Enter a valid email address.")
            #expect(try await gatehouse.counts() == [0, 0, 0])
        }
    }

    @Test("a declared Content-Length over 16 KiB is refused before the body is read")
    func declaredOversize() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            let response = try await api.send(.post, "/auth/signup", headers: headers, body: String(repeating: " ", count: 16 * 1024 + 1))
            #expect(response.status == 413)
            let json = #"{"email":"q@example.com","password":"a fine password"}"#
            let exact = json + String(repeating: " ", count: 16 * 1024 - json.utf8.count)
            #expect(exact.utf8.count == 16 * 1024)
            #expect(try await api.send(.post, "/auth/signup", headers: headers, body: exact).status == 201)
            #expect(try await gatehouse.count("users") == 1)
        }
    }

    @Test("a chunked body that grows past 16 KiB is refused with 413")
    func chunkedOversize() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            let port = try #require((api as? SocketTarget)?.port)
            let chunk = String(repeating: "x", count: 4096)
            let chunks = String(repeating: "1000\r\n\(chunk)\r\n", count: 5)
            let request = "POST /auth/signup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\(chunks)0\r\n\r\n"
            // A readiness wait, not a timing assertion: the suite shares two cores with a browser.
            let response = try await rawHTTP(port: port, request, timeout: .seconds(60))
            #expect(response.hasPrefix("HTTP/1.1 413"))
            #expect(response.contains(#""error":"payload_too_large""#))
            #expect(try await gatehouse.counts() == [0, 0, 0])
        }
    }

    @Test("unknown paths are 404 and wrong methods 405, as JSON")
    func notFound() async throws {
        try await TestGatehouse.run { api, _ in
            let missing = try await api.get("/auth/nothing")
            #expect(missing.status == 404)
            #expect(missing.json["error"] as? String == "not_found")
            // Hummingbird's router answers a known path with another method as not found.
            let wrongMethod = try await api.get("/auth/logout-all")
            #expect(wrongMethod.status == 404)
            #expect(wrongMethod.json["error"] as? String == "not_found")
        }
    }
}
