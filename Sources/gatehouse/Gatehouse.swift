import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseLogging
import GatehouseServer
import GatehouseStore
import Logging

/// The `gatehouse` command line (SPEC §5).
@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A session-based authentication gateway.",
        subcommands: [
            Serve.self, Health.self, Migrate.self, CheckConfig.self, UserCommand.self, SessionCommand.self, Audit.self, HashPassword.self,
        ]
    )

    /// Parses and runs a command; every failure is one line on stderr and a non-zero exit.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            StandardErrorLogOutput.shared.flush()
        } catch {
            StandardErrorLogOutput.shared.flush()
            let code = exitCode(for: error)
            if code == .success {
                // --help and --version.
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? ""
            if !message.isEmpty {
                FileHandle.standardError.write(Data("gatehouse: error: \(message) (see gatehouse --help)\n".utf8))
            }
            Foundation.exit(code.rawValue)
        }
    }
}

/// `--config`, shared by every subcommand.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: $GATEHOUSE_CONFIG or conf/gatehouse.yaml).")
    var config: String?

    /// The file to read.
    var path: String {
        config ?? ProcessInfo.processInfo.environment["GATEHOUSE_CONFIG"] ?? "conf/gatehouse.yaml"
    }

    /// The configuration, or a one-line error naming the bad key.
    func load() throws -> GatehouseConfiguration {
        try ConfigurationLoader.load(path: path, environment: ProcessInfo.processInfo.environment)
    }
}

/// Runs `body`, turning any error into one line on stderr and exit code 1.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ConfigurationError {
        FileHandle.standardError.write(Data("gatehouse: configuration error: \(error)\n".utf8))
        throw ExitCode(2)
    } catch {
        FileHandle.standardError.write(Data("gatehouse: error: \(describe(error))\n".utf8))
        throw ExitCode.failure
    }
}

func describe(_ error: any Error) -> String {
    switch error {
    case let error as CLIError: error.message
    case let error as StoreError: error.description
    default: String(describing: error).replacingOccurrences(of: "\n", with: " ")
    }
}

/// A command-line failure with a message for people.
struct CLIError: Error {
    let message: String
}

/// Logs to stderr at `level` in `format` (`log.format`), through ``StandardErrorLogOutput`` so
/// that logging never blocks the caller; called once per process.
func bootstrapLogging(level: String, format: LogFormat) {
    let parsed = Logger.Level(rawValue: level) ?? .info
    StandardErrorLogOutput.shared.setNoticeFormat(format)
    LoggingSystem.bootstrap { label in
        var handler = GatehouseLogHandler(label: label, format: format, output: StandardErrorLogOutput.shared)
        handler.logLevel = parsed
        return handler
    }
}

/// Opens the stores for an administrative command (migrating first, as `serve` does): the
/// database, and Redis only for commands that revoke (`redis: true`), which apply their
/// tombstones before they exit. Nothing else: no hashing threads, no server.
func openForCommand(_ options: ConfigOption, redis: Bool = false) throws -> GatehouseStores {
    let configuration = try options.load()
    bootstrapLogging(level: "warning", format: configuration.log.format)
    return try GatehouseStores.open(configuration, redis: redis)
}

/// Reads a password from standard input (never from the command line, where `ps` would show it).
func readPassword() throws -> String {
    guard let line = readLine(strippingNewline: true), !line.isEmpty else {
        throw CLIError(message: "no password on standard input")
    }
    return line
}

/// Prints a line to standard output.
func emit(_ line: String) {
    // Written at once, not buffered: `audit --follow | grep` sees each line as it happens.
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
