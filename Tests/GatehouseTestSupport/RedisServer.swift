import Foundation

/// A real `redis-server` started by the tests on a free loopback port, with its data in a
/// temp directory: it can be killed, hung (SIGSTOP), resumed and restarted on the same port,
/// empty or from its last `SAVE`.
public final class RedisServer: @unchecked Sendable {
    /// The port it listens on.
    public let port: Int
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
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? cli("PING"))?.hasPrefix("PONG") == true { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessError(message: "redis-server did not start on port \(port)")
    }

    /// Runs `redis-cli` against this server and returns its output.
    @discardableResult
    public func cli(_ arguments: String..., database: Int = 0) throws -> String {
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
public func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
