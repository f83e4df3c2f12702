import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer
import GatehouseStore

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage accounts.",
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Delete.self, Export.self, Unlock.self, VerifyEmail.self, ResetMFA.self]
    )

    struct EmailArgument: ParsableArguments {
        @Argument(help: "The account's email.") var email: String

        var normalized: String {
            get throws {
                guard let email = CredentialPolicy.normalizedEmail(email) else {
                    throw CLIError(message: "\"\(self.email)\" is not a valid email address")
                }
                return email
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account; the password is read from standard input.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument

        func run() async throws {
            try await reportingErrors {
                let email = try account.normalized
                let password = try readPassword()
                if let problem = CredentialPolicy.passwordProblem(password, email: email) { throw CLIError(message: problem.message) }
                let dependencies = try openForCommand(options)
                let parameters = dependencies.configuration.password.argon2
                let hasher = try Argon2Hasher(parameters: parameters, workers: 1, queueLimit: 1)
                let hash = try await hasher.hash(password)
                try await hasher.shutdown()
                do {
                    let user = try await dependencies.store.createUser(email: email, passwordHash: hash, session: nil, client: .commandLine)
                    emit("created \(user.email) (\(user.id))")
                } catch AuthStoreError.emailTaken {
                    throw CLIError(message: "\(email) already has an account")
                }
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift the login lockout of an account (abuse.lockout), from every address.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument

        func run() async throws {
            try await reportingErrors {
                let email = try account.normalized
                let dependencies = try openForCommand(options)
                let locked = try await dependencies.store.unlockLogins(email: email, client: .commandLine)
                emit(locked == 0 ? "\(email) was not locked; its failed-login counts are cleared" : "unlocked \(email)")
            }
        }
    }

    struct VerifyEmail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "verify-email", abstract: "Mark an account's email address verified (require_verified_email admits it).")
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument

        func run() async throws {
            try await reportingErrors {
                let email = try account.normalized
                let dependencies = try openForCommand(options, redis: true)
                let user = try await dependencies.withCache { try await dependencies.accounts.markEmailVerified(email: email, client: .commandLine) }
                guard user != nil else { throw CLIError(message: "no account for \(email)") }
                emit("verified \(email)")
            }
        }
    }

    struct ResetMFA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-mfa", abstract: "Turn an account's two-factor login off (its TOTP secret and recovery codes deleted), for a user who lost the device."
        )
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument

        func run() async throws {
            try await reportingErrors {
                let email = try account.normalized
                let dependencies = try openForCommand(options, redis: true)
                let user = try await dependencies.withCache { try await dependencies.accounts.disableMFA(email: email, reason: "admin", client: .commandLine) }
                guard user != nil else { throw CLIError(message: "no account for \(email)") }
                emit("two-factor login is off for \(email)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "One JSON object per line.") var json = false

        func run() async throws {
            try await reportingErrors {
                let dependencies = try openForCommand(options)
                for user in try await dependencies.store.listUsers() {
                    if json {
                        var object = user.json
                        object.add("disabled", !user.isActive)
                        emit(object.string)
                    } else {
                        emit([user.id, user.email, Timestamp.rfc3339(user.createdAt), user.isActive ? "active" : "disabled"].joined(separator: "\t"))
                    }
                }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an account and revoke its sessions.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument

        func run() async throws {
            try await setDisabled(true, options: options, account: account)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled account.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument

        func run() async throws {
            try await setDisabled(false, options: options, account: account)
        }
    }

    static func setDisabled(_ disabled: Bool, options: ConfigOption, account: EmailArgument) async throws {
        try await reportingErrors {
            let email = try account.normalized
            let dependencies = try openForCommand(options, redis: true)
            let found = try await dependencies.withCache {
                try await dependencies.store.setDisabled(email: email, disabled: disabled, client: .commandLine)
            }
            guard found else {
                throw CLIError(message: "no account for \(email)")
            }
            emit("\(disabled ? "disabled" : "enabled") \(email)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an account and its sessions (the audit log keeps its history).",
            discussion: "With --erase, everything held on the account goes, and its audit rows are pseudonymised: each keeps what happened and when, under a random pseudonym, with the email, address and user agent cleared."
        )
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument
        @Flag(help: "Also erase the account's personal data from the audit log and the mail outbox (right to erasure).") var erase = false

        func run() async throws {
            try await reportingErrors {
                let email = try account.normalized
                let dependencies = try openForCommand(options, redis: true)
                if erase {
                    let erasure = try await dependencies.withCache { try await dependencies.accounts.eraseUser(email: email, client: .commandLine) }
                    guard let erasure else { throw CLIError(message: "no account for \(email)") }
                    emit("erased \(email): \(erasure.sessions) sessions revoked, \(erasure.auditRows) audit rows now under \(erasure.pseudonym)")
                    return
                }
                let found = try await dependencies.withCache {
                    try await dependencies.store.deleteUser(email: email, client: .commandLine)
                }
                guard found else {
                    throw CLIError(message: "no account for \(email)")
                }
                emit("deleted \(email)")
            }
        }
    }
}

extension UserCommand {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print everything held on an account as JSON (no password hash, token, TOTP secret or mail text).")
        @OptionGroup var options: ConfigOption
        @OptionGroup var account: EmailArgument

        func run() async throws {
            try await reportingErrors {
                let email = try account.normalized
                let dependencies = try openForCommand(options)
                guard let export = try await dependencies.sqlite.exportUser(email: email, now: Date()) else {
                    throw CLIError(message: "no account for \(email)")
                }
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                emit(String(decoding: try encoder.encode(export), as: UTF8.self))
            }
        }
    }
}

struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "List and revoke sessions.",
        subcommands: [List.self, Revoke.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List live sessions, newest first.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Only this account's sessions.") var user: String?
        @Flag(help: "One JSON object per line.") var json = false

        func run() async throws {
            try await reportingErrors {
                let dependencies = try openForCommand(options)
                var userId: String?
                if let user {
                    userId = try await resolveUser(user, dependencies).id
                }
                for session in try await dependencies.store.listSessions(userId: userId) {
                    if json {
                        var object = JSONText()
                        object.add("id", session.id)
                        object.add("user_id", session.userId)
                        object.add("created_at", Timestamp.rfc3339(session.createdAt))
                        object.add("expires_at", Timestamp.rfc3339(session.expiresAt))
                        object.add("last_seen_at", Timestamp.rfc3339(session.lastSeenAt))
                        object.add("ip", session.ip)
                        object.add("user_agent", session.userAgent)
                        emit(object.string)
                    } else {
                        emit([session.id, session.userId, Timestamp.rfc3339(session.createdAt), Timestamp.rfc3339(session.lastSeenAt), session.ip].joined(separator: "\t"))
                    }
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke sessions: one (--id), a user's (--user) or every one (--all).")
        @OptionGroup var options: ConfigOption
        @Option(help: "Revoke every session of this account.") var user: String?
        @Option(help: "Revoke the session with this id.") var id: String?
        @Flag(help: "Revoke every session of every account.") var all = false

        func validate() throws {
            let chosen = [user != nil, id != nil, all].filter { $0 }.count
            guard chosen == 1 else { throw ValidationError("give exactly one of --user, --id or --all") }
        }

        func run() async throws {
            try await reportingErrors {
                let dependencies = try openForCommand(options, redis: true)
                let selector: SessionSelector
                if let user {
                    selector = .user(id: try await resolveUser(user, dependencies).id)
                } else if let id {
                    selector = .session(id: id.lowercased())
                } else {
                    selector = .all
                }
                let count = try await dependencies.withCache { [selector] in
                    try await dependencies.store.revokeSessions(selector, reason: "admin", client: .commandLine)
                }
                if case .session = selector, count == 0 { throw CLIError(message: "no session with id \(id ?? "")") }
                emit("revoked \(count) session\(count == 1 ? "" : "s")")
            }
        }
    }

    static func resolveUser(_ email: String, _ dependencies: GatehouseStores) async throws -> User {
        let normalized = CredentialPolicy.normalizedEmail(email) ?? email
        guard let user = try await dependencies.store.user(email: normalized) else {
            throw CLIError(message: "no account for \(email)")
        }
        return user
    }
}
