import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer
import GatehouseStore
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (migrates the database first).")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await reportingErrors {
            let configuration = try options.load()
            bootstrapLogging(level: configuration.log.level, format: configuration.log.format)
            let logger = Logger(label: "gatehouse")
            let dependencies = try GatehouseDependencies.open(configuration, logger: logger)
            logger.notice(
                "starting",
                metadata: [
                    "database": "\(configuration.database.path)", "redis": "\(configuration.redis.endpoint?.redacted ?? "off")",
                    "argon2": "m=\(configuration.password.argon2.memoryKiB),t=\(configuration.password.argon2.iterations),p=\(configuration.password.argon2.parallelism)",
                    "hash_workers": "\(dependencies.hasher.workers)",
                ]
            )
            try await runGatehouse(dependencies, logger: logger)
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe a running gateway's GET /healthz (or /readyz) on its listen address; exit 0 when it answers 200.",
        discussion: "The container image's HEALTHCHECK: no curl needed. A wildcard listen address is probed on loopback."
    )
    @OptionGroup var options: ConfigOption
    @Flag(help: "Probe GET /readyz (the database and Redis answer) instead of GET /healthz.") var ready = false
    @Option(help: "Probe this URL instead of the configured listen address.") var url: String?
    @Option(help: "Give up after this long (e.g. 3s).") var timeout: String = "5s"

    func run() async throws {
        try await reportingErrors {
            guard let limit = ConfigDuration.parse(timeout), limit.seconds > 0 else {
                throw CLIError(message: "--timeout: expected a duration such as 3s; got \"\(timeout)\"")
            }
            let target = try url ?? HealthProbe.url(for: options.load(), ready: ready)
            let answer: (status: Int, body: String)
            do {
                answer = try await HealthProbe.probe(url: target, timeout: limit)
            } catch {
                throw CLIError(message: "\(target): \(error)")
            }
            guard answer.status == 200 else {
                throw CLIError(message: "\(target) answered \(answer.status): \(answer.body.prefix(200))")
            }
            emit("\(target): \(answer.body.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the database schema.")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await reportingErrors {
            let configuration = try options.load()
            let database = try GatehouseDatabase(configuration: configuration.database)
            try database.migrate()
            emit("database \(configuration.database.path) is up to date")
        }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate the configuration and exit.")
    @OptionGroup var options: ConfigOption
    @Flag(name: .customLong("print"), help: "Print every key's effective value (file, environment and defaults together; secrets redacted).")
    var printValues = false

    func run() async throws {
        try await reportingErrors {
            let configuration = try options.load()
            guard printValues else {
                emit("configuration \(options.path) is valid (listen \(configuration.listen), database \(configuration.database.path), \(configuration.routes.count) routes)")
                return
            }
            for key in ConfigurationKey.all {
                emit("\(key.path): \(key.value(in: configuration))")
            }
        }
    }
}

struct HashPassword: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-password",
        abstract: "Read a password from standard input and print its Argon2id PHC string."
    )
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await reportingErrors {
            let configuration = try options.load()
            let password = try readPassword()
            let hasher = try Argon2Hasher(parameters: configuration.password.argon2, workers: 1)
            let hash = try await hasher.hash(password)
            try await hasher.shutdown()
            emit(hash)
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the audit log, newest first.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Only events about this email.") var user: String?
    @Option(help: "Only events since this long ago (e.g. 24h) or this RFC 3339 time.") var since: String?
    @Option(help: "At most this many events.") var limit: Int = 100
    @Flag(help: "One JSON object per line.") var json = false
    @Flag(help: "Print the last --limit events oldest first, then each new one as it is written, until interrupted.") var follow = false

    func run() async throws {
        try await reportingErrors {
            guard limit > 0 else { throw CLIError(message: "--limit must be positive") }
            var sinceDate: Date?
            if let since {
                if let duration = ConfigDuration.parse(since) {
                    sinceDate = Date().addingTimeInterval(-duration.seconds)
                } else if let date = try? Date(since, strategy: .iso8601) {
                    sinceDate = date
                } else {
                    throw CLIError(message: "--since: expected a duration such as 24h or an RFC 3339 time; got \"\(since)\"")
                }
            }
            let dependencies = try openForCommand(options)
            let email = user.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            let events = try await dependencies.store.auditEvents(AuditQuery(email: email, since: sinceDate, limit: limit))
            guard follow else {
                for event in events { show(event) }
                return
            }
            // Oldest first, as `tail -f` reads; then the rows written since, polled every
            // 500 ms (any instance on the database writes them, so there is nothing to listen to).
            for event in events.reversed() { show(event) }
            var last = try await dependencies.store.auditEvents(AuditQuery(limit: 1)).first?.id ?? 0
            while true {
                // Every row after the cursor, filtered here, so the cursor passes other users' rows.
                let new = try await dependencies.sqlite.auditEvents(after: last, limit: 1000)
                for event in new where email == nil || event.email == email { show(event) }
                last = new.last?.id ?? last
                if new.count < 1000 { try await Task.sleep(for: .milliseconds(500)) }
            }
        }
    }

    /// One event, as a tab-separated line or a JSON object.
    func show(_ event: AuditEvent) {
        if json {
            var object = JSONText()
            object.add("id", Int(event.id))
            object.add("at", Timestamp.rfc3339(event.at))
            object.add("event", event.kind.rawValue)
            object.add("outcome", event.outcome.rawValue)
            if let reason = event.reason { object.add("reason", reason) }
            if let userId = event.userId { object.add("user_id", userId) }
            if let email = event.email { object.add("email", email) }
            if let sessionId = event.sessionId { object.add("session_id", sessionId) }
            object.add("ip", event.ip)
            object.add("user_agent", event.userAgent)
            emit(object.string)
        } else {
            let columns = [
                Timestamp.rfc3339(event.at), event.kind.rawValue, event.outcome.rawValue, event.reason ?? "-",
                event.email ?? "-", event.ip,
            ]
            emit(columns.joined(separator: "\t"))
        }
    }
}
