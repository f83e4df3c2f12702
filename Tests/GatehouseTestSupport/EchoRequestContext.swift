import Hummingbird
import NIOCore

/// The echo upstream's request context: Hummingbird's, and the connection the request came on.
struct EchoRequestContext: RequestContext {
    /// Hummingbird's storage.
    var coreContext: CoreRequestContextStorage
    /// The TCP peer as `ip:port`: two requests with the same one came over one kept-alive connection.
    let peer: String

    /// Creates the context for a request arriving on `source.channel`.
    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        let address = source.channel.remoteAddress
        self.peer = "\(address?.ipAddress ?? "unknown"):\(address?.port ?? 0)"
    }
}
