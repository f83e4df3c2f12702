internal import CHiredis
import NIOCore

/// A Redis reply.
public enum RESPValue: Sendable, Equatable {
    /// `+OK`.
    case simpleString(String)
    /// `-ERR …`: the server refused the command.
    case error(String)
    /// `:42`.
    case integer(Int64)
    /// `$…`: a binary-safe string.
    case bulkString([UInt8])
    /// `$-1` / `*-1`.
    case null
    /// `*…`.
    case array([RESPValue])

    /// The value as text, for string replies.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// Converts a hiredis reply tree (not freed here).
    init(reply: UnsafePointer<redisReply>) {
        let reply = reply.pointee
        func bytes() -> [UInt8] {
            guard let pointer = reply.str, reply.len > 0 else { return [] }
            return pointer.withMemoryRebound(to: UInt8.self, capacity: Int(reply.len)) { Array(UnsafeBufferPointer(start: $0, count: Int(reply.len))) }
        }
        switch reply.type {
        case REDIS_REPLY_STRING: self = .bulkString(bytes())
        case REDIS_REPLY_STATUS: self = .simpleString(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: self = .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: self = .integer(reply.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(reply.elements))
            for index in 0..<Int(reply.elements) {
                if let element = reply.element[index] { elements.append(RESPValue(reply: element)) }
            }
            self = .array(elements)
        default: self = .null
        }
    }
}

/// Encodes commands with hiredis (`redisFormatCommandArgv`): binary-safe RESP arrays.
enum RESPEncoder {
    static func encode(_ arguments: [[UInt8]], into buffer: inout ByteBuffer) {
        var pointers: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int] = []
        defer { pointers.forEach { $0?.deallocate() } }
        for argument in arguments {
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBytes { raw in
                if let base = raw.baseAddress { copy.withMemoryRebound(to: UInt8.self, capacity: argument.count) { $0.update(from: base.assumingMemoryBound(to: UInt8.self), count: argument.count) } }
            }
            pointers.append(copy)
            lengths.append(argument.count)
        }
        var target: UnsafeMutablePointer<CChar>?
        var argv: [UnsafePointer<CChar>?] = pointers.map { $0.map { UnsafePointer($0) } }
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &argv, lengths)
        guard length > 0, let target else { return }
        defer { redisFreeCommand(target) }
        target.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
            buffer.writeBytes(UnsafeBufferPointer(start: $0, count: Int(length)))
        }
    }
}

/// Feeds bytes to a hiredis `redisReader` and takes whole replies out.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Adds received bytes; returns every reply now complete, or throws on a protocol error.
    func feed(_ buffer: ByteBuffer) throws -> [RESPValue] {
        let status = buffer.withUnsafeReadableBytes { raw in
            redisReaderFeed(reader, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard status == REDIS_OK else { throw RedisError.protocolError }
        var replies: [RESPValue] = []
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw RedisError.protocolError }
            guard let reply else { break }
            replies.append(RESPValue(reply: reply.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(reply)
        }
        return replies
    }
}

/// Why a Redis command did not get an answer.
public enum RedisError: Error, Sendable, Equatable {
    /// No connection is up (Redis down, or reconnecting).
    case unavailable
    /// The breaker is open after repeated failures.
    case circuitOpen
    /// No reply within `redis.timeout`.
    case timeout
    /// The connection closed before the reply.
    case connectionClosed
    /// The bytes received are not RESP.
    case protocolError
    /// Redis answered an error to a command that must succeed (e.g. AUTH).
    case server(String)
}
