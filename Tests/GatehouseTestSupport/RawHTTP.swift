import Foundation

/// Sends bytes exactly as given over a new TCP connection and returns everything the server
/// answers until it closes the connection or `timeout` passes: for requests no well-behaved
/// client would send (chunked bodies, broken framing).
public func rawHTTP(host: String = "127.0.0.1", port: Int, _ request: String, timeout: Duration = .seconds(5)) async throws -> String {
    try await onThread { try rawHTTPBlocking(host: host, port: port, request, timeout: timeout) }
}

private func rawHTTPBlocking(host: String, port: Int, _ request: String, timeout: Duration) throws -> String {
    let descriptor = try connectTCP(host: host, port: port, receiveTimeout: timeout)
    defer { close(descriptor) }
    _ = sendAll(request, on: descriptor)
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, 0)
        if count <= 0 { break }
        response += buffer[0..<count]
        if let text = String(bytes: response, encoding: .utf8), let end = text.range(of: "\r\n\r\n"),
            let lengthLine = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
            let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
            text.utf8.count - text[..<end.upperBound].utf8.count >= length
        {
            break
        }
    }
    return String(decoding: response, as: UTF8.self)
}

/// A blocking TCP connection to `host:port` with a receive timeout; the caller closes it.
func connectTCP(host: String, port: Int, receiveTimeout: Duration, noDelay: Bool = false) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw ProcessError(message: "socket() failed") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, host, &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(descriptor)
        throw ProcessError(message: "connect() to \(host):\(port) failed")
    }
    if noDelay {
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    var seconds = timeval(tv_sec: Int(receiveTimeout.components.seconds), tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
    return descriptor
}

/// Sends all of `text`; `false` when the connection took only part of it.
private func sendAll(_ text: String, on descriptor: Int32) -> Bool {
    let bytes = Array(text.utf8)
    var sent = 0
    while sent < bytes.count {
        let written = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard written > 0 else { return false }
        sent += written
    }
    return true
}

/// One kept-alive HTTP/1.1 connection with blocking I/O, for tests that need many requests on
/// the same connection (so on the same server event loop) or on their own threads. Used by
/// one thread at a time; from async code, through ``status(_:_:cookie:)``, which blocks a
/// thread of its own rather than one of the concurrency pool's.
public final class KeepAliveConnection: @unchecked Sendable {
    private let descriptor: Int32
    private let port: Int
    private var buffer: [UInt8] = []

    /// Connects to `host:port`.
    public init(host: String = "127.0.0.1", port: Int) throws {
        self.port = port
        descriptor = try connectTCP(host: host, port: port, receiveTimeout: .seconds(60), noDelay: true)
    }

    /// Connects to `host:port` given as one string.
    public convenience init(address: String) throws {
        let parts = address.split(separator: ":")
        try self.init(host: String(parts[0]), port: Int(parts[1])!)
    }

    deinit { close(descriptor) }

    /// Sends one request (`GET`-like, no body unless given) and reads its response: status and head.
    public func send(_ method: String, _ path: String, cookie: String? = nil, body: String? = nil) throws -> (status: Int, head: String) {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let cookie { request += "Cookie: gatehouse_session=\(cookie)\r\n" }
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        try write(request)
        let response = try readResponse()
        return (response.status, response.head)
    }

    /// ``send(_:_:cookie:body:)`` on a thread of its own; the response's status.
    public func status(_ method: String, _ path: String, cookie: String? = nil) async throws -> Int {
        try await onThread { try self.send(method, path, cookie: cookie).status }
    }

    /// Writes raw bytes.
    public func write(_ text: String) throws {
        guard sendAll(text, on: descriptor) else { throw ProcessError(message: "send() failed") }
    }

    /// Reads and discards `count` bytes (what is buffered first); the number read before the
    /// connection closed, if it closed first.
    public func discard(_ count: Int) throws -> Int {
        var remaining = count
        let buffered = min(buffer.count, remaining)
        buffer.removeFirst(buffered)
        remaining -= buffered
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while remaining > 0 {
            let received = recv(descriptor, &chunk, min(chunk.count, remaining), 0)
            guard received > 0 else { break }
            remaining -= received
        }
        return count - remaining
    }

    /// Reads one response head only; the body stays unread.
    public func readHead() throws -> String {
        let separator = Array("\r\n\r\n".utf8)
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            if let end = buffer.firstRange(of: separator) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                buffer.removeFirst(end.upperBound)
                return head
            }
            let count = recv(descriptor, &chunk, chunk.count, 0)
            guard count > 0 else { throw ProcessError(message: "connection to port \(port) closed before a head") }
            buffer += chunk[0..<count]
        }
    }

    /// Reads one response (head, and a body framed by Content-Length unless it answers a HEAD).
    public func readResponse(answeringHead: Bool = false) throws -> (status: Int, head: String, body: String) {
        let separator = Array("\r\n\r\n".utf8)
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            if let end = buffer.firstRange(of: separator) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let lines = head.split(separator: "\r\n")
                let announced = lines.first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                let length = answeringHead ? 0 : announced
                if buffer.count - end.upperBound >= length {
                    let body = String(decoding: buffer[end.upperBound..<(end.upperBound + length)], as: UTF8.self)
                    buffer.removeFirst(end.upperBound + length)
                    let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
                    return (status, head, body)
                }
            }
            let count = recv(descriptor, &chunk, chunk.count, 0)
            guard count > 0 else {
                let reason = count == 0 ? "closed by the server" : String(cString: strerror(errno))
                throw ProcessError(message: "connection to port \(port): \(reason), \(buffer.count) bytes unread")
            }
            buffer += chunk[0..<count]
        }
    }
}

/// Runs blocking work on a thread of its own, so that it does not hold a concurrency thread.
public func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
