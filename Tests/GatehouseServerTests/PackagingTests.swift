import Foundation
import GatehouseTestSupport
import Testing

/// The Dockerfile and the systemd unit as shipped: linted by the tools their users run.
@Suite("Container image and systemd unit")
struct PackagingTests {
    /// Runs `executable` with `arguments` to its end on a thread of its own; its exit status
    /// and what it wrote to standard output and standard error, together.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await onThread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }

    static let hadolint = pythonPackages + "/bin/hadolint"

    static func lint(_ dockerfile: String) async throws -> (status: Int32, output: String) {
        try await run(hadolint, ["--config", packageRoot + "/.hadolint.yaml", "--no-color", dockerfile])
    }

    @Test("hadolint passes the Dockerfile, which probes itself (HEALTHCHECK gatehouse health), runs as a numeric non-root user and keeps its data in a volume")
    func dockerfile() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.hadolint), "\(Self.hadolint) is missing: run scripts/bootstrap")
        let path = packageRoot + "/Dockerfile"
        let lint = try await Self.lint(path)
        #expect(lint.status == 0, "\(lint.output)")
        #expect(lint.output.isEmpty, "\(lint.output)")

        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        // The probe is the binary itself: no curl in the image.
        let healthcheck = try #require(text.range(of: #"HEALTHCHECK [^\n]*\\\n\s*CMD \["gatehouse", "health""#, options: .regularExpression))
        #expect(!text[healthcheck].isEmpty)
        #expect(!lines.contains { !$0.hasPrefix("#") && $0.contains("curl") })
        #expect(lines.last(where: { $0.hasPrefix("USER ") }) == "USER 10001:10001")
        #expect(lines.contains("VOLUME /var/lib/gatehouse"))
        #expect(lines.contains { $0.hasPrefix("ENTRYPOINT [\"gatehouse\"]") })

        // The lint can fail: the same file ending as root is refused (DL3002).
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let asRoot = directory.file("Dockerfile")
        try text.replacingOccurrences(of: "USER 10001:10001", with: "USER root").write(toFile: asRoot, atomically: true, encoding: .utf8)
        let refused = try await Self.lint(asRoot)
        #expect(refused.status != 0)
        #expect(refused.output.contains("DL3002"), "\(refused.output)")
    }

    @Test("the systemd unit is hardened (no privileges, read-only system, private /tmp and devices, few address families, a system-call filter) and systemd-analyze verifies it")
    func systemdUnit() async throws {
        let path = packageRoot + "/conf/systemd/gatehouse.service"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let directives = Set(text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && $0.contains("=") })
        for directive in [
            "User=gatehouse", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectSystem=strict", "ProtectHome=yes",
            "PrivateTmp=yes", "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
            "ProtectControlGroups=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces=yes",
            "LockPersonality=yes", "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service", "UMask=0077",
            "StateDirectory=gatehouse", "KillSignal=SIGTERM", "Restart=on-failure",
        ] {
            #expect(directives.contains(directive), "missing \(directive)")
        }
        // Stopping waits longer than the drain (shutdown_timeout 10s, then 5s of cancellation).
        let stop = try #require(directives.first { $0.hasPrefix("TimeoutStopSec=") })
        #expect(Int(stop.dropFirst("TimeoutStopSec=".count).dropLast()) ?? 0 > 15)

        // systemd-analyze verify names unknown keys and bad values; it needs the binary to exist.
        guard let analyze = try? findExecutable("systemd-analyze") else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let unit = directory.file("gatehouse.service")
        try text.replacingOccurrences(of: "/usr/local/bin/gatehouse", with: GatehouseProcess.binaryPath).write(toFile: unit, atomically: true, encoding: .utf8)
        let verified = try await Self.run(analyze, ["verify", unit])
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.isEmpty, "\(verified.output)")
        // And it would catch a misspelt directive.
        try text.replacingOccurrences(of: "/usr/local/bin/gatehouse", with: GatehouseProcess.binaryPath)
            .replacingOccurrences(of: "NoNewPrivileges=", with: "NoNewPrivilege=").write(toFile: unit, atomically: true, encoding: .utf8)
        #expect(try await Self.run(analyze, ["verify", unit]).output.contains("NoNewPrivilege"))
    }
}
