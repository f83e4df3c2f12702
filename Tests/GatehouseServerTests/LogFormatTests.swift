import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import Testing

@Suite("Log format of a real process", .serialized)
struct LogFormatTests {
    static let password = "json log password"

    @Test("log.format json: every stderr line is a JSON object; each request has one access line with its X-Request-Id; no secret is written")
    func jsonLines() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory)
        // Trace level (the test configuration's), so that every line a request can cause is
        // looked at; the format by its environment override.
        let server = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"), environment: ["GATEHOUSE_LOG_FORMAT": "json"])
        defer { server.terminate() }
        let api = SocketTarget(address: server.address)

        #expect(try await api.signup("json@example.com", Self.password).status == 201)
        let login = try await api.login("json@example.com", Self.password)
        #expect(login.status == 200)
        let token = try #require(login.sessionToken())
        let verify = try await api.get("/auth/verify", cookie: token)
        #expect(verify.status == 200)
        let missing = try await api.get("/no/such/page?password=\(Self.password.replacingOccurrences(of: " ", with: "+"))", cookie: token)
        #expect(missing.status == 404)
        await server.stop()

        let text = server.log
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count > 4)
        let objects = lines.compactMap { line -> [String: Any]? in
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            return object
        }
        for object in objects {
            #expect(object["ts"] is String && object["level"] is String && object["msg"] is String, "\(object)")
        }
        #expect(objects.contains { $0["msg"] as? String == "listening" && $0["address"] as? String == server.address })

        let requests = objects.filter { $0["msg"] as? String == "request" }
        let expected: [(HTTPResult, String, String, String, String)] = [
            (login, "POST", "/auth/login", "200", "router"),
            (verify, "GET", "/auth/verify", "200", "fast_path"),
            (missing, "GET", "/no/such/page", "404", "fast_path"),
        ]
        for (response, method, path, status, served) in expected {
            let requestId = try #require(response.headers[.xRequestId], "\(path)")
            let matching = requests.filter { $0["request_id"] as? String == requestId }
            #expect(matching.count == 1, "one access line for \(path)")
            let line = try #require(matching.first, "\(path)")
            #expect(line["method"] as? String == method)
            #expect(line["path"] as? String == path)
            #expect(line["status"] as? String == status)
            #expect(line["served"] as? String == served, "\(path)")
            #expect(line["ms"] is String)
            #expect(line["level"] as? String == "info")
        }
        // Every line the router writes for a request carries its id: the login line too.
        let loginId = try #require(login.headers[.xRequestId])
        #expect(objects.contains { $0["msg"] as? String == "login" && $0["request_id"] as? String == loginId })

        // I1: no password, cookie value or token, at trace level, in any line or field.
        for secret in [Self.password, Self.password.replacingOccurrences(of: " ", with: "+"), token, "gatehouse_session="] {
            #expect(!text.contains(secret), "\(secret) was logged")
        }
    }
}
