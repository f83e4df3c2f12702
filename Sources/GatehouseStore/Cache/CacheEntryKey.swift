import Crypto
import Foundation
import GatehouseCore

/// The secret that authenticates Redis entries (see ``SessionCacheEntry``): shared by every
/// instance that shares Redis, never in Redis itself.
///
/// Read from `redis.entry_key_file`, or from `<database.path>.redis-key` when that is empty;
/// a missing file is created with 32 random bytes (as 64 hex digits), mode 0600, atomically
/// (instances starting together all end up with the first one written). Leading and trailing
/// whitespace in the file is ignored, so `openssl rand -hex 32 > file` works; at least 32
/// bytes must remain.
public enum CacheEntryKey {
    /// The file used when `redis.entry_key_file` is empty.
    public static func defaultPath(databasePath: String) -> String { databasePath + ".redis-key" }

    /// Reads the key at `path`, creating the file when it does not exist.
    public static func load(path: String) throws -> SymmetricKey {
        if let existing = try read(path) { return existing }
        try create(path)
        guard let created = try read(path) else { throw StoreError.io("cannot read \(path) after creating it") }
        return created
    }

    private static func read(_ path: String) throws -> SymmetricKey? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) { throw StoreError.io("cannot read the Redis entry key \(path)") }
            return nil
        }
        let trimmed = data.drop { isSpace($0) }.reversed().drop { isSpace($0) }.reversed()
        guard trimmed.count >= 32 else {
            throw StoreError.io("the Redis entry key \(path) is too short: at least 32 bytes (e.g. `openssl rand -hex 32`)")
        }
        return SymmetricKey(data: Data(trimmed))
    }

    /// Writes a new key beside `path` and links it into place; another process that got there
    /// first wins (`link` fails with EEXIST and its key is the one read).
    private static func create(_ path: String) throws {
        let temporary = "\(path).\(getpid()).\(UUID().uuidString).tmp"
        let descriptor = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StoreError.io("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        defer { unlink(temporary) }
        let text = Array((SymmetricKey(size: .bits256).withUnsafeBytes { TokenHash.hex(Array($0)) } + "\n").utf8)
        let written = text.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == text.count, synced == 0 else { throw StoreError.io("cannot write \(temporary)") }
        if link(temporary, path) != 0, errno != EEXIST {
            throw StoreError.io("cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
