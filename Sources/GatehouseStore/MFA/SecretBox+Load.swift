import Crypto
import Foundation
import GatehouseCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SecretBox {
    /// Loads the MFA key from exactly one place: the file `keyFile` (`mfa.key_file`), else the
    /// `GATEHOUSE_MFA_KEY` variable in `environment`, else the file at `defaultPath` (beside the
    /// database), which is created with a new random key on first use.
    ///
    /// A key is 32 bytes written as base64 (`openssl rand -base64 32`) or 64 hex digits
    /// (`openssl rand -hex 32`), surrounding whitespace ignored. Setting both `keyFile` and the
    /// variable is refused rather than one silently winning, since secrets sealed under one key
    /// do not open under the other. A key file must not be readable or writable by group or
    /// others (like ssh with a private key): `chmod 600` it, or pass the key in the variable.
    /// Errors name the file or the variable and never quote the key.
    public static func load(keyFile: String?, environment: [String: String], defaultPath: String) throws(ConfigurationError) -> SecretBox {
        let variable = environment[environmentVariable]
        let bytes: [UInt8]
        switch (keyFile, variable) {
        case (.some, .some):
            throw ConfigurationError(key: "mfa.key_file", message: "both mfa.key_file and \(environmentVariable) are set; set only one")
        case (let path?, nil):
            bytes = try KeyFile.readKey(at: path)
        case (nil, let text?):
            bytes = try KeyText.decode(text, source: environmentVariable)
        case (nil, nil):
            bytes = try KeyFile.readOrCreateKey(at: defaultPath)
        }
        return SecretBox(checkedKey: SymmetricKey(data: bytes))
    }
}

/// The text form of a 256-bit key: base64 or hex.
enum KeyText {
    /// Bytes in a key.
    static let byteCount = 32

    /// The 32 key bytes of `text` (trimmed), 64 hex digits or base64; `source` names it in errors.
    static func decode(_ text: String, source: String) throws(ConfigurationError) -> [UInt8] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.utf8.count == byteCount * 2, let bytes = hex(trimmed) { return bytes }
        guard let data = Data(base64Encoded: trimmed) else {
            throw ConfigurationError(
                key: source,
                message: "not a key: expected 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits (openssl rand -hex 32)"
            )
        }
        guard data.count == byteCount else {
            throw ConfigurationError(key: source, message: "the key is \(data.count) bytes; it must be \(byteCount) (256 bits)")
        }
        return Array(data)
    }

    /// The key written as base64 with a final newline, as a generated key file holds it.
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() + "\n" }

    private static func hex(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var high: UInt8?
        for character in text.utf8 {
            guard let nibble = nibble(character) else { return nil }
            if let value = high {
                bytes.append(value << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return bytes
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Key files on disk: read with a permission check, or created once, atomically.
enum KeyFile {
    /// The most a key file may hold; a key is 64 characters at most, plus whitespace.
    static let maximumLength = 4096

    /// The key in the file at `path`; refuses a file group or others can read or write.
    static func readKey(at path: String) throws(ConfigurationError) -> [UInt8] {
        guard let bytes = try readKeyIfExists(at: path) else {
            throw ConfigurationError(key: path, message: "cannot open the MFA key file: \(String(cString: strerror(ENOENT)))")
        }
        return bytes
    }

    /// The key in the file at `path`, or a new random key written there (mode 0600) when the
    /// file does not exist.
    ///
    /// Two processes starting at once end with one key: each writes its candidate key to its own
    /// temporary file (O_CREAT|O_EXCL, mode 0600) and publishes it with `link(2)`, which fails
    /// with EEXIST if the path exists. The loser discards its candidate and reads the winner's
    /// file, which is complete from the moment it appears (no reader sees a half-written key).
    static func readOrCreateKey(at path: String) throws(ConfigurationError) -> [UInt8] {
        if let bytes = try readKeyIfExists(at: path) { return bytes }
        return try publishNewKey(at: path)
    }

    /// Writes a new key to `path` unless a file appeared there first, in which case that file's
    /// key is returned and the new one discarded.
    static func publishNewKey(at path: String) throws(ConfigurationError) -> [UInt8] {
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let temporary = "\(path).\(UInt64.random(in: .min ... .max)).tmp"
        try createFile(temporary, containing: KeyText.encode(key), reportingAs: path)
        let linked = link(temporary, path)
        let linkError = errno
        unlink(temporary)
        if linked == 0 {
            syncDirectory(of: path)
            return key
        }
        guard linkError == EEXIST else {
            throw ConfigurationError(key: path, message: "cannot create the MFA key file: \(String(cString: strerror(linkError)))")
        }
        return try readKey(at: path)
    }

    /// The key in the file at `path`, or `nil` if there is no such file.
    private static func readKeyIfExists(at path: String) throws(ConfigurationError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw ConfigurationError(key: path, message: "cannot open the MFA key file: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & 0o170000 == 0o100000 else {
            throw ConfigurationError(key: path, message: "the MFA key file is not a regular file")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw ConfigurationError(
                key: path,
                message: "the MFA key file is accessible by group or others (mode \(String(status.st_mode & 0o777, radix: 8))): "
                    + "chmod 600 it, or pass the key in \(SecretBox.environmentVariable)"
            )
        }
        var buffer = [UInt8](repeating: 0, count: maximumLength + 1)
        var length = 0
        while length < buffer.count {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + length, $0.count - length) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else {
                throw ConfigurationError(key: path, message: "cannot read the MFA key file: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            length += count
        }
        guard length <= maximumLength else { throw ConfigurationError(key: path, message: "the MFA key file is too large to hold a key") }
        guard let text = String(validating: buffer[..<length], as: UTF8.self) else {
            throw ConfigurationError(key: path, message: "the MFA key file is not text")
        }
        return try KeyText.decode(text, source: path)
    }

    /// Creates `path` (which must not exist) with mode 0600 and writes `text`, synced to disk.
    private static func createFile(_ path: String, containing text: String, reportingAs source: String) throws(ConfigurationError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigurationError(key: source, message: "cannot create the MFA key file: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let failure = errno
                unlink(path)
                throw ConfigurationError(key: source, message: "cannot write the MFA key file: \(String(cString: strerror(failure)))")
            }
            written += count
        }
        guard fchmod(descriptor, 0o600) == 0, fsync(descriptor) == 0 else {
            let failure = errno
            unlink(path)
            throw ConfigurationError(key: source, message: "cannot write the MFA key file: \(String(cString: strerror(failure)))")
        }
    }

    /// Flushes the directory entry of a new file, so the key survives a crash.
    private static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}
