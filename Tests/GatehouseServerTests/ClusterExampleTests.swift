import Foundation
import GatehouseTestSupport
import Testing

/// `conf/cluster/`: two instances, one Redis, nginx as the load balancer, brought up from the
/// shipped files with their documented addresses (8081, 8082, 6379, 3000, 80) replaced by
/// free loopback ports.
@Suite("The two-instance example behind nginx, and a rolling restart under load", .serialized)
struct ClusterExampleTests {
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var ok = 0
        private var failures: [String] = []
        func record(_ status: Int?, _ detail: String) {
            lock.withLock { if status == 200 { ok += 1 } else { failures.append(detail) } }
        }
        var counts: (ok: Int, failures: [String]) { lock.withLock { (ok, failures) } }
    }

    @Test("a session made through one instance works through the other; restarting each in turn under load fails no request")
    func rollingRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let redisPort = try freePort()
        let redis = Process()
        redis.executableURL = URL(fileURLWithPath: try findExecutable("redis-server"))
        redis.arguments = [packageRoot + "/conf/cluster/redis.conf", "--port", "\(redisPort)", "--dir", directory.path, "--daemonize", "no", "--logfile", ""]
        redis.standardOutput = FileHandle.nullDevice
        try redis.run()
        defer { redis.terminate(grace: .seconds(5)) }

        try await EchoUpstream.with { appPort in
            let ports = [try freePort(), try freePort()]
            let config = try String(contentsOfFile: packageRoot + "/conf/cluster/gatehouse.yaml", encoding: .utf8)
                .replacingOccurrences(of: "127.0.0.1:6379", with: "127.0.0.1:\(redisPort)")
                .replacingOccurrences(of: "127.0.0.1:3000", with: "127.0.0.1:\(appPort)")
            let configPath = directory.file("gatehouse.yaml")
            try config.write(toFile: configPath, atomically: true, encoding: .utf8)
            // The example as shipped, but its database in the test's directory, plain HTTP on
            // loopback (no Secure cookie), cheap hashes and no login limits.
            let environment = [
                "GATEHOUSE_DATABASE_PATH": directory.file("gatehouse.sqlite"), "GATEHOUSE_COOKIE_SECURE": "false",
                "GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB": "1024", "GATEHOUSE_PASSWORD_ARGON2_ITERATIONS": "1",
                "GATEHOUSE_PUBLIC_URL": "", "GATEHOUSE_DATABASE_BUSY_TIMEOUT": "30s",
                // The load logs one account in from one address hundreds of times a second.
                "GATEHOUSE_ABUSE_LOGIN_PER_IP": "0", "GATEHOUSE_ABUSE_LOGIN_PER_ACCOUNT": "0",
            ]
            func instance(_ index: Int, generation: Int) async throws -> GatehouseProcess {
                try await GatehouseProcess(
                    configPath: configPath, logPath: directory.file("instance-\(index)-\(generation).log"),
                    environment: environment.merging(["GATEHOUSE_LISTEN": "127.0.0.1:\(ports[index])"]) { $1 })
            }
            var instances = [try await instance(0, generation: 0), try await instance(1, generation: 0)]
            defer { for gatehouse in instances { gatehouse.terminate() } }
            let site = try String(contentsOfFile: packageRoot + "/conf/cluster/nginx.conf", encoding: .utf8)
                .replacingOccurrences(of: "127.0.0.1:8081", with: "127.0.0.1:\(ports[0])")
                .replacingOccurrences(of: "127.0.0.1:8082", with: "127.0.0.1:\(ports[1])")
                .replacingOccurrences(of: "127.0.0.1:3000", with: "127.0.0.1:\(appPort)")
            let nginx = try await FrontProxy.nginx(site: site)
            defer { nginx.stop() }

            // One session, made through nginx, valid on each instance directly.
            let balanced = SocketTarget(host: "127.0.0.1", port: nginx.port)
            let token = try #require(try await balanced.signup("cluster@example.com", "a fine cluster password").sessionToken())
            for port in ports {
                #expect(try await SocketTarget(host: "127.0.0.1", port: port).get("/auth/me", cookie: token).status == 200)
            }

            // Load through nginx (proxied GETs, API GETs and logins) while each instance in turn gets SIGTERM and is started again.
            let tally = Tally()
            let running = ManagedAtomicFlag()
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<6 {
                        group.addTask {
                            var index = 0
                            while running.isSet {
                                index += 1
                                let path = ["/app/w\(worker)/\(index)", "/auth/me", "/auth/login"][worker % 3]
                                do {
                                    // A POST is never retried by nginx once sent: it must be answered where it went.
                                    let answer = path == "/auth/login"
                                        ? try await balanced.login("cluster@example.com", "a fine cluster password")
                                        : try await balanced.get(path, cookie: token)
                                    tally.record(answer.status, "\(path): \(answer.status) \(answer.body.prefix(120))")
                                } catch {
                                    tally.record(nil, "\(path): \(error)")
                                }
                            }
                        }
                    }
                }
            }
            try await Task.sleep(for: .seconds(1))
            for index in 0..<2 {
                let before = tally.counts.ok
                await instances[index].stop()
                // The other instance carries the load alone for a moment.
                #expect(await eventually { tally.counts.ok > before + 20 })
                instances[index] = try await instance(index, generation: 1)
                // nginx sends it traffic again before the next one stops.
                let restarted = instances[index]
                #expect(await eventually { restarted.log.contains("served=") }, "\(restarted.log.suffix(1500))")
            }
            running.clear()
            await load.value

            // How many requests succeed depends on how busy the machine is; that load was carried
            // while each instance was down is asserted above, so only failures are counted here.
            let (_, failures) = tally.counts
            #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
        }
    }
}

/// A flag set until cleared, readable from any task.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = true
    var isSet: Bool { lock.withLock { value } }
    func clear() { lock.withLock { value = false } }
}
