import Foundation

/// The repository's root, for reading shipped configuration files.
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// A real front proxy (nginx or Caddy) started from the shipped configuration, with the
/// addresses in it replaced by the test's ports.
public final class FrontProxy: @unchecked Sendable {
    /// The port it listens on.
    public let port: Int
    private let process: Process
    private let directory: TemporaryDirectory

    /// Starts nginx with `conf/nginx/gatehouse.conf`, and `conf/nginx/gatehouse-proxy.conf`
    /// where the site includes it from (`snippets/`, relative to the main configuration).
    public static func nginx(gatehousePort: Int, appPort: Int) async throws -> FrontProxy {
        let port = try freePort()
        let directory = try TemporaryDirectory()
        let site = try shippedConfiguration("conf/nginx/gatehouse.conf", gatehousePort: gatehousePort, appPort: appPort)
            .replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(port);")
        try site.write(toFile: directory.file("site.conf"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory.file("snippets"), withIntermediateDirectories: true)
        let snippet = try shippedConfiguration("conf/nginx/gatehouse-proxy.conf", gatehousePort: gatehousePort, appPort: appPort)
        try snippet.write(toFile: directory.file("snippets/gatehouse-proxy.conf"), atomically: true, encoding: .utf8)
        return try await nginx(in: directory, port: port)
    }

    /// Starts nginx with `site` (a server block, and upstream blocks) as its only site,
    /// `listen 80;` in it replaced by a free loopback port.
    public static func nginx(site: String) async throws -> FrontProxy {
        let port = try freePort()
        let directory = try TemporaryDirectory()
        try site.replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(port);").write(toFile: directory.file("site.conf"), atomically: true, encoding: .utf8)
        return try await nginx(in: directory, port: port)
    }

    /// nginx in `directory`, whose `site.conf` is the site, listening on `port`.
    private static func nginx(in directory: TemporaryDirectory, port: Int) async throws -> FrontProxy {
        let main = """
            worker_processes 1;
            error_log \(directory.file("error.log")) warn;
            pid \(directory.file("nginx.pid"));
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path \(directory.file("body"));
                proxy_temp_path \(directory.file("proxy"));
                fastcgi_temp_path \(directory.file("fastcgi"));
                uwsgi_temp_path \(directory.file("uwsgi"));
                scgi_temp_path \(directory.file("scgi"));
                include \(directory.file("site.conf"));
            }
            """
        try main.write(toFile: directory.file("nginx.conf"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try findExecutable("nginx"))
        process.arguments = ["-p", directory.path, "-c", directory.file("nginx.conf"), "-g", "daemon off;"]
        return try await FrontProxy(process: process, port: port, directory: directory)
    }

    /// Starts Caddy with `conf/caddy/Caddyfile`.
    public static func caddy(gatehousePort: Int, appPort: Int) async throws -> FrontProxy {
        let port = try freePort()
        let directory = try TemporaryDirectory()
        let site = try shippedConfiguration("conf/caddy/Caddyfile", gatehousePort: gatehousePort, appPort: appPort)
            .replacingOccurrences(of: "\n:80 {", with: "\nhttp://127.0.0.1:\(port) {")
        let global = "{\n\tadmin off\n\tauto_https off\n}\n\n"
        try (global + site).write(toFile: directory.file("Caddyfile"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try findExecutable("caddy"))
        process.arguments = ["run", "--config", directory.file("Caddyfile"), "--adapter", "caddyfile"]
        process.environment = [
            "HOME": directory.path, "XDG_DATA_HOME": directory.file("data"), "XDG_CONFIG_HOME": directory.file("config"),
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ]
        return try await FrontProxy(process: process, port: port, directory: directory)
    }

    /// A shipped file with its documented addresses (Gatehouse on 8080, the app on 3000)
    /// replaced by the test's ports.
    static func shippedConfiguration(_ path: String, gatehousePort: Int, appPort: Int) throws -> String {
        try String(contentsOfFile: packageRoot + "/" + path, encoding: .utf8)
            .replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(gatehousePort)")
            .replacingOccurrences(of: "127.0.0.1:3000", with: "127.0.0.1:\(appPort)")
    }

    private init(process: Process, port: Int, directory: TemporaryDirectory) async throws {
        self.process = process
        self.port = port
        self.directory = directory
        FileManager.default.createFile(atPath: directory.file("stdout.log"), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.file("stdout.log")))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let listening = await eventually { (try? await rawHTTP(port: port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout: .seconds(1)))?.isEmpty == false }
        guard listening else {
            let output = (try? String(contentsOfFile: directory.file("stdout.log"), encoding: .utf8)) ?? ""
            let errors = (try? String(contentsOfFile: directory.file("error.log"), encoding: .utf8)) ?? ""
            stop()
            throw ProcessError(message: "front proxy did not start: \(output) \(errors)")
        }
    }

    /// Stops the proxy (SIGTERM, then SIGKILL for it and its workers) and removes its files.
    public func stop() {
        let pid = process.processIdentifier
        let children = childProcesses(of: pid)
        process.terminate(grace: .seconds(3))
        for child in children { kill(child, SIGKILL) }
        directory.remove()
    }

    private func childProcesses(of pid: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0) }
    }
}
