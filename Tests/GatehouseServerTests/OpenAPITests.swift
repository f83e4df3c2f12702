import Foundation
import GatehouseTestSupport
import Testing

@Suite("GET /openapi.yaml kept true by schemathesis")
struct OpenAPITests {
    @Test("the served description is the shipped file, valid OpenAPI 3.1, and every answer of a live server to schemathesis's cases matches it, none a 5xx")
    func schemathesis() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory)
        let gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"), environment: ["GATEHOUSE_LOG_LEVEL": "info"])
        defer { gatehouse.terminate() }

        let port = try #require(gatehouse.address.split(separator: ":").last.flatMap { Int($0) })
        let served = try await rawHTTP(port: port, "GET /openapi.yaml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(served.hasPrefix("HTTP/1.1 200"))
        #expect(served.lowercased().contains("content-type: application/yaml"))

        // Exits non-zero (and throws, with schemathesis's report) on an invalid file, a served
        // document that differs from it, a response outside it or any 5xx.
        let report = try await runPythonScript("openapi_check.py", arguments: [
            packageRoot + "/Sources/GatehouseServer/Resources/openapi.yaml", "http://\(gatehouse.address)", "--max-examples", "25",
        ])
        #expect(report.contains("openapi_check: passed"))
        #expect(!gatehouse.log.contains("status=5"))
    }
}
