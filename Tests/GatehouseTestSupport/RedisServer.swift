import Foundation

/// A real `redis-server` started by the tests on a free loopback port, with its data in a
/// temp directory: it can be killed, hung (SIGSTOP), resumed and restarted on the same port,
/// empty or from its last `SAVE`.
public final class RedisServer: @unchecked Sendable {
    /// The port it listens on (chosen again if another process took it before the first start).
    public private(set) var port: Int
    /// Its working directory (where `SAVE` writes `dump.rdb`).
    public let directory: TemporaryDirectory
    /// `requirepass`, if any.
    public let password: String?
    private var process: Process?

    /// Starts a server; `password` turns on `requirepass`.
    public init(password: String? = nil) async throws {
        self.port = try freePort()
        self.directory = try TemporaryDirectory()
        self.password = password
        // freePort() hands back an ephemeral port, and until redis-server binds it any outgoing
        // connection on the machine may take it: a server that exits at once gets a new port.
        for _ in 1..<5 {
            do {
                try await start()
                return
            } catch let error as RedisStartError where error.exited {
                port = try freePort()
            }
        }
        try await start()
    }

    /// `redis://[:password@]127.0.0.1:port/db`.
    public func url(database: Int = 0) -> String {
        "redis://\(password.map { ":\($0)@" } ?? "")127.0.0.1:\(port)/\(database)"
    }

    /// Starts (or restarts) the process and waits until it answers PING. With `empty`, the
    /// last snapshot is deleted first.
    public func start(empty: Bool = false) async throws {
        if empty { try? FileManager.default.removeItem(atPath: directory.file("dump.rdb")) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try findExecutable("redis-server"))
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--dbfilename", "dump.rdb", "--daemonize", "no", "--loglevel", "warning",
        ]
        if let password { arguments += ["--requirepass", password] }
        process.arguments = arguments
        let logPath = directory.file("redis.log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log?.close()
        self.process = process
        // Generous: on two shared cores with the whole suite starting at once, a process start
        // can take seconds. The wait ends early if the server exits.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if (try? await cli("PING"))?.hasPrefix("PONG") == true, process.isRunning { return }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw RedisStartError(
            exited: !process.isRunning,
            message: "redis-server did not start on port \(port): \(output.suffix(500))")
    }

    /// Runs `redis-cli` against this server and returns its output; on a thread of its own
    /// (see ``onThread(_:)``).
    @discardableResult
    public func cli(_ arguments: String..., database: Int = 0) async throws -> String {
        let (port, password) = (port, password)
        return try await onThread { try Self.runCLI(arguments, port: port, password: password, database: database) }
    }

    /// ``cli(_:database:)`` on the calling thread, which it blocks: only from a thread of its own.
    @discardableResult
    public func cliNow(_ arguments: String..., database: Int = 0) throws -> String {
        try Self.runCLI(arguments, port: port, password: password, database: database)
    }

    private static func runCLI(_ arguments: [String], port: Int, password: String?, database: Int) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try findExecutable("redis-cli"))
        process.arguments = ["-p", String(port), "-n", String(database)] + arguments
        if let password { process.environment = ["REDISCLI_AUTH": password] }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// SIGKILL: a crash, nothing saved.
    public func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGSTOP: the process hangs with its sockets open.
    public func hang() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGSTOP)
    }

    /// SIGCONT after ``hang()``.
    public func resume() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGCONT)
    }

    /// Stops the server and deletes its directory.
    public func shutdown() {
        resume()
        kill()
        directory.remove()
    }
}

/// Why ``RedisServer/start(empty:)`` failed; `exited` when the process ended (a port taken).
struct RedisStartError: Error, CustomStringConvertible {
    let exited: Bool
    let message: String
    var description: String { message }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
        }
    }
    guard bound else { throw ProcessError(message: "no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The path of an executable on PATH (or in /usr/sbin, /usr/bin).
public func findExecutable(_ name: String) throws -> String {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/bin:/sbin:/bin"
    for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
        return "\(directory)/\(name)"
    }
    throw ProcessError(message: "\(name) is not installed (scripts/bootstrap installs it)")
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
/// Every use waits for something to become ready, so the default is generous (a loaded
/// 2-core machine running the whole suite stalls for seconds): it ends as soon as it holds.
public func eventually(timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
