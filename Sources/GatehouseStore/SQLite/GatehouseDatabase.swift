import Foundation
import GRDB
import GatehouseCore

/// The SQLite database: a GRDB `DatabasePool` in WAL mode, shared safely by several processes.
public final class GatehouseDatabase: Sendable {
    /// The pool every repository reads and writes through.
    public let pool: DatabasePool
    /// The file's path.
    public let path: String

    /// Opens (creating when missing) the database at `configuration.path`.
    ///
    /// A database created here is readable and writable by its owner only (0600), and so are
    /// its `-wal` and `-shm` files. Does not migrate: call ``migrate()`` (as `serve` and
    /// `gatehouse migrate` do).
    public init(configuration: DatabaseConfiguration) throws {
        let url = URL(fileURLWithPath: configuration.path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Self.createOwnerOnly(configuration.path)
        var grdb = Configuration()
        // Another process holding the write lock makes us wait, not fail.
        grdb.busyMode = .timeout(configuration.busyTimeout.seconds)
        self.path = configuration.path
        self.pool = try DatabasePool(path: configuration.path, configuration: grdb)
        // I6: a commit is on disk before the client hears of it. GRDB picks NORMAL for WAL
        // (durable across crashes, not power loss); the one writer connection is switched to FULL.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
    }

    /// The file holds password hashes and session token hashes: it is created empty with mode
    /// 0600 before SQLite opens it, which would create it 0644 (less the umask). SQLite gives
    /// the `-wal` and `-shm` files it creates, whenever it does, the database file's mode, so
    /// they are owner-only too. An existing file keeps the mode it has.
    static func createOwnerOnly(_ path: String) throws {
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            if errno == EEXIST { return }
            throw StoreError.io("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        // The umask can only have taken bits away; a stricter one would leave the owner unable to write.
        guard fchmod(descriptor, 0o600) == 0 else { throw StoreError.io("cannot set the mode of \(path): \(String(cString: strerror(errno)))") }
    }

    /// Applies every migration not yet applied; safe when several processes start at once.
    public func migrate() throws {
        // GRDB migrates in deferred transactions, which two processes starting together could
        // both begin; an advisory lock on a side file serialises them.
        let lockPath = path + ".migrate-lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StoreError.io("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw StoreError.io("cannot lock \(lockPath)") }
        defer { flock(descriptor, LOCK_UN) }
        try Self.migrator.migrate(pool)
    }

    /// Whether every known migration has been applied.
    public func isMigrated() throws -> Bool {
        try pool.read { db in try Self.migrator.hasCompletedMigrations(db) }
    }

    /// A cheap query, for readiness: throws when the database cannot serve.
    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    /// Runs `body` in an `IMMEDIATE` transaction, so that a read-then-write never meets
    /// another process's write halfway (which would fail with `SQLITE_BUSY` instead of waiting).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1_users_sessions_audit") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id TEXT PRIMARY KEY NOT NULL,
                        email TEXT NOT NULL UNIQUE,
                        password_hash TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        email_verified INTEGER NOT NULL DEFAULT 0,
                        mfa_enabled INTEGER NOT NULL DEFAULT 0,
                        disabled_at INTEGER
                    );
                    CREATE TABLE sessions (
                        id TEXT PRIMARY KEY NOT NULL,
                        token_hash TEXT NOT NULL UNIQUE,
                        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        last_seen_at INTEGER NOT NULL,
                        ip TEXT NOT NULL,
                        user_agent TEXT NOT NULL
                    );
                    CREATE INDEX sessions_user_id ON sessions(user_id);
                    CREATE INDEX sessions_expires_at ON sessions(expires_at);
                    CREATE TABLE audit_events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        at INTEGER NOT NULL,
                        event TEXT NOT NULL,
                        outcome TEXT NOT NULL,
                        reason TEXT,
                        user_id TEXT,
                        email TEXT,
                        session_id TEXT,
                        ip TEXT NOT NULL,
                        user_agent TEXT NOT NULL
                    );
                    CREATE INDEX audit_events_user_id ON audit_events(user_id, id);
                    CREATE INDEX audit_events_at ON audit_events(at);
                    CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
                    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
                    CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
                    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
                    """
            )
        }
        migrator.registerMigration("v2_cache_invalidations") { db in
            // The outbox of SPEC I3: a revocation's cache invalidation, committed with the
            // revocation and removed once Redis has applied it.
            try db.execute(
                sql: """
                    CREATE TABLE cache_invalidations (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        token_hash TEXT,
                        user_id TEXT,
                        created_at INTEGER NOT NULL
                    );
                    """
            )
        }
        migrator.registerMigration("v3_invalidations_kept") { db in
            // Applied invalidations are kept (marked) rather than deleted, so that a Redis
            // restored from an older state can be given them again.
            try db.execute(
                sql: """
                    ALTER TABLE cache_invalidations ADD COLUMN applied_at INTEGER;
                    UPDATE cache_invalidations SET applied_at = created_at;
                    CREATE INDEX cache_invalidations_pending ON cache_invalidations(id) WHERE applied_at IS NULL;
                    CREATE INDEX cache_invalidations_created_at ON cache_invalidations(created_at);
                    """
            )
        }
        migrator.registerMigration("v4_login_failures") { db in
            // abuse.lockout's counts, one row per bucket (SPEC §2.4): in the source of truth
            // so that every instance on the store sees one count and `gatehouse user unlock`
            // reaches it. `address` is '' for every address not known to the account.
            try db.execute(
                sql: """
                    CREATE TABLE login_failures (
                        email TEXT NOT NULL,
                        address TEXT NOT NULL,
                        failures INTEGER NOT NULL,
                        window_started_at INTEGER NOT NULL,
                        locked_until INTEGER,
                        forget_at INTEGER NOT NULL,
                        PRIMARY KEY (email, address)
                    ) WITHOUT ROWID;
                    CREATE INDEX login_failures_forget_at ON login_failures(forget_at);
                    CREATE INDEX audit_events_sessions_begun ON audit_events(user_id, ip, at) WHERE event IN ('login', 'signup') AND outcome = 'success';
                    """
            )
        }
        migrator.registerMigration("v5_account_lifecycle") { db in
            // SPEC §2.4. Tokens mailed or handed out (password reset, email verification, the
            // MFA step of a login) are stored as SHA-256 only (I1). TOTP secrets are sealed with
            // the `mfa.key_file` key; recovery codes are hashed. The mail outbox holds each
            // message from the transaction that queued it until one instance has sent it; its
            // text (which carries a token) is cleared once sent.
            try db.execute(
                sql: """
                    CREATE TABLE account_tokens (
                        token_hash TEXT PRIMARY KEY NOT NULL,
                        purpose TEXT NOT NULL,
                        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        created_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX account_tokens_user ON account_tokens(user_id, purpose);
                    CREATE INDEX account_tokens_expires_at ON account_tokens(expires_at);
                    CREATE TABLE totp_credentials (
                        user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        sealed_secret TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        confirmed_at INTEGER,
                        last_used_step INTEGER
                    ) WITHOUT ROWID;
                    CREATE TABLE recovery_codes (
                        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                        code_hash TEXT NOT NULL,
                        PRIMARY KEY (user_id, code_hash)
                    ) WITHOUT ROWID;
                    CREATE TABLE mail_outbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        created_at INTEGER NOT NULL,
                        purpose TEXT NOT NULL,
                        user_id TEXT,
                        envelope_from TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        message TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at INTEGER NOT NULL,
                        claimed_until INTEGER,
                        sent_at INTEGER,
                        failed_at INTEGER,
                        last_error TEXT
                    );
                    CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
                    """
            )
        }
        migrator.registerMigration("v6_audit_maintenance") { db in
            // The audit log stays append-only for every write but two, each allowed only
            // inside a transaction that holds its row in `audit_maintenance` (inserted and
            // deleted by that transaction, so no other connection ever sees it): `retention`
            // deletes rows past `audit.retention`, and `erasure` (`user delete --erase`)
            // rewrites who a row is about, never what happened or when.
            try db.execute(
                sql: """
                    CREATE TABLE audit_maintenance (purpose TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;
                    DROP TRIGGER audit_events_append_only_update;
                    DROP TRIGGER audit_events_append_only_delete;
                    CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
                    WHEN NOT EXISTS (SELECT 1 FROM audit_maintenance WHERE purpose = 'erasure')
                        OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.event IS NOT OLD.event
                        OR NEW.outcome IS NOT OLD.outcome OR NEW.reason IS NOT OLD.reason OR NEW.session_id IS NOT OLD.session_id
                    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
                    CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
                    WHEN NOT EXISTS (SELECT 1 FROM audit_maintenance WHERE purpose = 'retention')
                    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
                    """
            )
        }
        return migrator
    }()
}

/// A store failure that is not a domain answer.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file could not be opened or locked.
    case io(String)
    /// The database has not been migrated to this version's schema.
    case notMigrated

    /// One line for people.
    public var description: String {
        switch self {
        case .io(let message): message
        case .notMigrated: "database schema is not up to date; run `gatehouse migrate`"
        }
    }
}
