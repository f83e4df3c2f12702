// nio-reference PORT UPSTREAM_HOST:UPSTREAM_PORT [THREADS]
//
// Listens on 127.0.0.1:PORT. GET /ok answers 200 with an empty body; every other request
// is forwarded to the upstream over a keep-alive HTTP/1.1 connection owned by the client
// connection (so on its event loop), and the response is streamed back.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 3, let port = Int(arguments[1]),
      let colon = arguments[2].lastIndex(of: ":"), let upstreamPort = Int(arguments[2][arguments[2].index(after: colon)...])
else {
    print("usage: nio-reference PORT UPSTREAM_HOST:UPSTREAM_PORT [THREADS]")
    exit(2)
}
try await ReferenceServer.run(
    port: port,
    upstream: Upstream(host: String(arguments[2][..<colon]), port: upstreamPort),
    threads: arguments.count > 3 ? Int(arguments[3]) : nil
)
