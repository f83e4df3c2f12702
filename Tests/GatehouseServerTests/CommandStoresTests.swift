import Foundation
import GatehouseTestSupport
import Testing

@Suite("What the commands open", .serialized)
struct CommandStoresTests {
    /// Connections Redis has accepted so far.
    static func connectionsReceived(_ redis: RedisServer) async throws -> Int {
        let stats = try await redis.cli("INFO", "stats")
        let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_connections_received:") }
        return Int(line?.split(separator: ":").last ?? "") ?? -1
    }

    @Test("reading commands (user list, session list, audit) open only the database; revoking ones (user disable) reach Redis")
    func readingCommandsOpenOnlyTheDatabase() async throws {
        let redis = try await RedisServer()
        defer { redis.shutdown() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let config = try writeTestConfiguration(in: directory, extra: "redis:\n  url: \(redis.url())\n")
        #expect(try await runGatehouse(["user", "add", "cli@example.com", "--config", config], stdin: "command line password\n").status == 0)
        let before = try await Self.connectionsReceived(redis)
        for command in [["user", "list"], ["session", "list"], ["audit"]] {
            #expect(try await runGatehouse(command + ["--config", config]).status == 0, "\(command)")
        }
        // redis-cli's own INFO connections are the only ones.
        #expect(try await Self.connectionsReceived(redis) - before == 1)
        let listed = try await runGatehouse(["user", "list", "--config", config])
        #expect(listed.stdout.contains("cli@example.com"))
        let beforeDisable = try await Self.connectionsReceived(redis)
        #expect(try await runGatehouse(["user", "disable", "cli@example.com", "--config", config]).status == 0)
        #expect(try await Self.connectionsReceived(redis) - beforeDisable > 1)
    }
}
