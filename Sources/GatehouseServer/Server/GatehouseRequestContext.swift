import GatehouseCore
import Hummingbird
import NIOCore

/// Per-request state: Hummingbird's core context, the TCP peer's address and the request's
/// client facts (trust, scheme, request id), computed once by ``APIErrorMiddleware``.
public struct GatehouseRequestContext: RequestContext {
    /// Hummingbird's storage.
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer's IP address (`unknown` when there is no socket, as in router tests).
    public let peerAddress: String
    /// The request's client facts and id; set once per request, before any controller runs.
    public internal(set) var forwarding: ForwardingContext?

    /// Creates the context for a request arriving on `source.channel`.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Auth bodies are small; anything above 16 KiB is refused with 413 (SPEC §2.1).
    public var maxUploadSize: Int { AuthRequestBody.maximumSize }
}
