import Foundation

/// A real `gatehouse` process started from the built binary, listening on a free loopback port.
public final class GatehouseProcess: @unchecked Sendable {
    /// `host:port` it listens on.
    public let address: String
    /// File its stderr (the log) goes to.
    public let logPath: String
    private let process: Process

    /// The built `gatehouse` executable next to the test bundle (or under `.build/debug`).
    public static var binaryPath: String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("gatehouse").path,
            FileManager.default.currentDirectoryPath + "/.build/debug/gatehouse",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    /// Starts `gatehouse serve --config configPath` and waits until it is listening.
    public init(configPath: String, logPath: String, environment: [String: String] = [:]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = ["serve", "--config", configPath]
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"].merging(environment) { $1 }
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardError = log
        process.standardOutput = log
        try process.run()
        self.process = process
        self.logPath = logPath
        let deadline = Date().addingTimeInterval(20)
        var found: String?
        while found == nil, Date() < deadline, process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            // `address=…` in the text format, `"address":"…"` in JSON.
            if let range = text.range(of: #"address=[0-9.:\[\]a-f]+|"address":"[0-9.:\[\]a-f]+"#, options: .regularExpression) {
                found = String(text[range].drop { $0 != "=" && $0 != ":" }.dropFirst().filter { $0 != "\"" })
            }
        }
        guard let found else {
            process.terminate(grace: .seconds(5))
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw ProcessError(message: "gatehouse did not start listening: \(text)")
        }
        self.address = found
    }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Resident memory now, in KiB (from /proc).
    public var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Whether the process is still running.
    public var isRunning: Bool { process.isRunning }

    /// Everything the process has logged so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends SIGTERM, waits up to 5 s, then SIGKILL: usable from `defer`, so that no test
    /// leaves a server running whatever way it ends.
    public func terminate() {
        process.terminate(grace: .seconds(5))
    }

    /// ``terminate()`` without blocking the caller's thread.
    public func stop() async {
        _ = try? await onThread { self.terminate() }
    }
}

/// Runs the `gatehouse` binary once, like a person at a terminal.
public struct CommandResult: Sendable {
    /// Exit status.
    public let status: Int32
    /// Standard output.
    public let stdout: String
    /// Standard error.
    public let stderr: String
}

/// Runs `gatehouse arguments...` with `stdin` as standard input, waiting on a thread of its
/// own (see ``onThread(_:)``).
public func runGatehouse(_ arguments: [String], stdin: String = "", environment: [String: String] = [:]) async throws -> CommandResult {
    try await onThread { try runGatehouseBlocking(arguments, stdin: stdin, environment: environment) }
}

private func runGatehouseBlocking(_ arguments: [String], stdin: String, environment: [String: String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: GatehouseProcess.binaryPath)
    process.arguments = arguments
    process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"].merging(environment) { $1 }
    let input = Pipe()
    let output = Pipe()
    let error = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try process.run()
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    let stdoutData = output.fileHandleForReading.readDataToEndOfFile()
    let stderrData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self), stderr: String(decoding: stderrData, as: UTF8.self))
}

/// A helper process failed.
public struct ProcessError: Error, CustomStringConvertible {
    /// What happened.
    public let message: String
    /// The message.
    public var description: String { message }
}

/// A configuration file for tests: cheap Argon2 parameters, a database in `directory`.
extension GatehouseProcess {
    /// Runs `body` with a `gatehouse serve` process (log level `info`, its own temp directory)
    /// in front of a live echo upstream on the public route `/public/`.
    public static func withPublicEcho<T: Sendable>(
        environment: [String: String] = [:], _ body: @Sendable (GatehouseProcess) async throws -> T
    ) async throws -> T {
        try await EchoUpstream.with { appPort in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let config = try writeTestConfiguration(in: directory, extra: singleRouteYAML(appPort: appPort, prefix: "/public/", auth: "none"))
            let gatehouse = try await GatehouseProcess(configPath: config, logPath: directory.file("serve.log"), environment: ["GATEHOUSE_LOG_LEVEL": "info"].merging(environment) { $1 })
            defer { gatehouse.terminate() }
            return try await body(gatehouse)
        }
    }
}

/// YAML for one upstream, `app` on a loopback port, behind one route.
public func singleRouteYAML(appPort: Int, prefix: String, auth: String) -> String {
    "upstreams:\n  app: http://127.0.0.1:\(appPort)\nroutes:\n  - {prefix: \(prefix), upstream: app, auth: \(auth)}\n"
}

public func writeTestConfiguration(in directory: TemporaryDirectory, extra: String = "") throws -> String {
    let path = directory.file("gatehouse.yaml")
    let yaml = """
        listen: 127.0.0.1:0
        database:
          path: \(directory.file("gatehouse.sqlite"))
          # Two instances write one file on two shared cores with the whole suite running.
          busy_timeout: 30s
        cookie:
          secure: false
        password:
          argon2: {memory_kib: 1024, iterations: 1, parallelism: 1}
        # Off unless a test turns one on (GATEHOUSE_ABUSE_*): suites log in many times from one address.
        abuse:
          login_per_ip: 0
          login_per_account: 0
          signup_per_ip: 0
          forgot_per_ip: 0
          forgot_per_account: 0
          mfa_per_account: 0
          lockout: {max_failures: 0}
        log:
          level: trace
        \(extra)
        """
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
