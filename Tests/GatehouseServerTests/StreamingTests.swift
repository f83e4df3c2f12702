import AsyncHTTPClient
import Foundation
import GatehouseTestSupport
import NIOCore
import NIOConcurrencyHelpers
import Testing

/// 1 GiB each way through a real gatehouse process, sampling its memory meanwhile.
@Suite("Streaming through the proxy with flat memory", .serialized)
struct StreamingTests {
    static let size = 1 << 30

    @Test("a 1 GiB download and a 1 GiB upload pass through with bounded RSS")
    func oneGiB() async throws {
        try await GatehouseProcess.withPublicEcho { gatehouse in
            let baseline = gatehouse.residentKiB
            let peak = NIOLockedValueBox(baseline)
            let sampling = Task {
                while !Task.isCancelled {
                    let now = gatehouse.residentKiB
                    peak.withLockedValue { $0 = max($0, now) }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            let client = HTTPClient(eventLoopGroupProvider: .singleton)

            let download = try await client.execute(HTTPClientRequest(url: "http://\(gatehouse.address)/public/big/\(Self.size)"), timeout: .seconds(600))
            #expect(download.status.code == 200)
            var received = 0
            for try await part in download.body { received += part.readableBytes }
            #expect(received == Self.size)

            var upload = HTTPClientRequest(url: "http://\(gatehouse.address)/public/upload")
            upload.method = .POST
            upload.body = .stream(ZeroBytes(total: Self.size), length: .known(Int64(Self.size)))
            let answer = try await client.execute(upload, timeout: .seconds(600))
            let echoed = try await answer.body.collect(upTo: 1 << 20)
            let json = (try JSONSerialization.jsonObject(with: Data(buffer: echoed))) as? [String: Any]
            #expect(json?["body_length"] as? Int == Self.size)

            try await client.shutdown()
            sampling.cancel()
            let growthMiB = (peak.withLockedValue { $0 } - baseline) / 1024
            // Two GiB went through; the process grew by a few buffers, not by the body.
            #expect(growthMiB < 96, "RSS grew by \(growthMiB) MiB")
            try? "baseline \(baseline / 1024) MiB, peak growth \(growthMiB) MiB".write(toFile: NSTemporaryDirectory() + "gatehouse-streaming-rss.txt", atomically: true, encoding: .utf8)
        }
    }
}

/// `total` zero bytes in 64 KiB chunks, generated as they are consumed.
struct ZeroBytes: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let total: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: Int
        let chunk = ByteBuffer(repeating: 0, count: 64 * 1024)

        mutating func next() async -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            let size = Swift.min(remaining, chunk.readableBytes)
            remaining -= size
            return chunk.getSlice(at: 0, length: size)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: total) }
}
