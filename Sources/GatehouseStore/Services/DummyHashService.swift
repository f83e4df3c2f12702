import GatehouseCore
import Logging
import ServiceLifecycle

/// Keeps the dummy hash that unknown emails are verified against made with the Argon2id
/// parameters most stored hashes have (``Argon2Hasher/follow(stored:)``), so that an unknown
/// email takes as long as most accounts' wrong password (SPEC §2.1) — also after a change of
/// `password.argon2`, while most accounts still hold a hash made with the older parameters.
///
/// ``refresh()`` runs before the server listens; the service runs it again every `interval`.
public struct DummyHashService: Service {
    /// Between two readings of the stored hashes' parameters: they change only as accounts
    /// are created or log in with an older hash.
    public static let defaultInterval = Duration.seconds(600)

    let store: any AuthStore
    let hasher: Argon2Hasher
    let interval: Duration
    let logger: Logger

    /// Creates the service.
    public init(store: any AuthStore, hasher: Argon2Hasher, interval: Duration = Self.defaultInterval, logger: Logger) {
        self.store = store
        self.hasher = hasher
        self.interval = interval
        self.logger = logger
    }

    /// Counts the stored hashes by parameters and makes the dummy hash follow them. A failure
    /// keeps the dummy hash as it was until the next round.
    public func refresh() async {
        do {
            if try await hasher.follow(stored: try await store.passwordHashParameters()) {
                let parameters = hasher.dummyParameters
                logger.info(
                    "unknown emails are verified with the parameters of most stored hashes",
                    metadata: ["m": "\(parameters.memoryKiB)", "t": "\(parameters.iterations)", "p": "\(parameters.parallelism)"]
                )
            }
        } catch {
            logger.warning("reading the parameters of stored password hashes failed", metadata: ["error": "\(error)"])
        }
    }

    /// Refreshes every interval, until shutdown.
    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
            await refresh()
        }
    }
}
