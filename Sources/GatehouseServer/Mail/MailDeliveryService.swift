import Foundation
import GatehouseCore
import GatehouseStore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Where the outbox's messages go: the `file` or `smtp` mailer.
protocol MailTransport: Sendable {
    /// Delivers one message; throws ``MailDeliveryError`` (or any error, taken as transient).
    func deliver(_ mail: OutgoingMail) async throws
}

/// A delivery that failed: `transient` ones are retried, others given up on.
struct MailDeliveryError: Error, CustomStringConvertible {
    /// One line, no secret.
    let description: String
    /// Whether a later attempt may succeed (connection refused, timeout, 4xx).
    let isTransient: Bool
}

/// Sends the mail outbox (SPEC §2.4): every message was committed to SQLite by the request
/// that queued it, so a mail-server outage or a restart loses none. Each round claims the due
/// messages for a lease (so two instances never send one message twice, and a message whose
/// sender died is sent by another after the lease), delivers them one by one, and marks each
/// sent at once. A transient failure retries after 5 s, doubling up to 15 min, for 24 h; a
/// permanent one (5xx) is given up on. Shutdown waits for the message in flight.
final class MailDeliveryService: Service, Sendable {
    let store: SQLiteAuthStore
    let transport: any MailTransport
    let logger: Logger
    /// How often the outbox is looked at when nothing woke the service.
    let pollInterval: Duration
    /// The first retry's delay; each next one doubles, up to ``maximumRetryDelay``.
    let firstRetryDelay: Duration
    /// The longest wait between attempts.
    static let maximumRetryDelay = Duration.seconds(15 * 60)
    /// After this long a message is given up on.
    static let giveUpAfter = Duration.seconds(24 * 3600)
    /// How long a claim keeps other instances off a message.
    static let lease = Duration.seconds(5 * 60)

    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(store: SQLiteAuthStore, transport: any MailTransport, logger: Logger, pollInterval: Duration = .seconds(2), firstRetryDelay: Duration = .seconds(5)) {
        self.store = store
        self.transport = transport
        self.logger = logger
        self.pollInterval = pollInterval
        self.firstRetryDelay = firstRetryDelay
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The service `mail.mailer` asks for, or `nil` for `none`.
    static func configured(_ configuration: GatehouseConfiguration, store: SQLiteAuthStore, logger: Logger) throws -> MailDeliveryService? {
        switch configuration.mail.mailer {
        case .none: return nil
        case .file: return MailDeliveryService(store: store, transport: FileMailTransport(directory: configuration.mail.fileDir), logger: logger)
        case .smtp: return MailDeliveryService(store: store, transport: try SMTPMailTransport(configuration.mail.smtp), logger: logger)
        }
    }

    /// Asks for a round now (a request just queued a message).
    func poke() {
        wake.yield()
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                // A ticker feeds the same stream as pokes: one loop, one round at a time.
                group.addTask { [wake, pollInterval] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: pollInterval)
                        wake.yield()
                    }
                }
                wake.yield()
                for await _ in wakeups {
                    if Task.isShuttingDownGracefully { break }
                    await round()
                }
                group.cancelAll()
            }
        } onGracefulShutdown: { [wake] in
            wake.finish()
        }
    }

    /// Claims and delivers what is due; errors of the store are logged and retried next round.
    func round() async {
        do {
            while true {
                let batch = try await store.claimDueMail(limit: 16, lease: Self.lease)
                if batch.isEmpty { return }
                for message in batch {
                    try await deliver(message)
                    if Task.isShuttingDownGracefully { return }
                }
            }
        } catch {
            logger.error("mail outbox round failed", metadata: ["error": "\(error)"])
        }
    }

    private func deliver(_ message: OutboxMail) async throws {
        let metadata: Logger.Metadata = ["mail_id": "\(message.id)", "purpose": "\(message.mail.purpose)"]
        do {
            try await transport.deliver(message.mail)
            try await store.markMailSent(id: message.id)
            logger.info("mail sent", metadata: metadata)
        } catch {
            let failure = error as? MailDeliveryError ?? MailDeliveryError(description: "\(error)", isTransient: true)
            let retryAt = retryTime(after: message.attempts + 1, createdAt: message.createdAt, transient: failure.isTransient)
            try await store.markMailFailed(id: message.id, error: failure.description, retryAt: retryAt)
            var details = metadata
            details["error"] = "\(failure.description)"
            if let retryAt {
                details["retry_at"] = "\(Timestamp.rfc3339(retryAt))"
                logger.warning("mail not sent; will retry", metadata: details)
            } else {
                logger.error("mail given up", metadata: details)
            }
        }
    }

    /// When to try again after `attempts` failures, or `nil` to give up.
    func retryTime(after attempts: Int, createdAt: Date, transient: Bool) -> Date? {
        guard transient else { return nil }
        let delay = min(firstRetryDelay * (1 << min(attempts - 1, 20)), Self.maximumRetryDelay)
        let next = Date().addingTimeInterval(delay.seconds)
        return next.timeIntervalSince(createdAt) > Self.giveUpAfter.seconds ? nil : next
    }
}

/// The `file` mailer: each message becomes `<file_dir>/<time>-<id>.eml`, owner-only (it holds
/// a token), written under a temporary name and renamed, so a reader never sees half a file.
struct FileMailTransport: MailTransport {
    let directory: String

    func deliver(_ mail: OutgoingMail) async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let name = "\(Timestamp.milliseconds(Date()))-\(UUID().uuidString.lowercased()).eml"
        let path = (directory as NSString).appendingPathComponent(name)
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw MailDeliveryError(description: "cannot create \(temporary): \(String(cString: strerror(errno)))", isTransient: true) }
        let bytes = Array(mail.message.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw MailDeliveryError(description: "cannot write \(path)", isTransient: true)
        }
    }
}
