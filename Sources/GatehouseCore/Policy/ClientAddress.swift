import Foundation

/// Works out the client's IP address from the peer and `X-Forwarded-For`.
public enum ClientAddress {
    /// The peer itself unless it is a trusted proxy; then the right-most address in
    /// `X-Forwarded-For` that is not itself trusted (the left-most entries are client-supplied
    /// and can be forged).
    public static func resolve(peer: String, forwardedFor: [String], trustedProxies: [CIDR]) -> String {
        guard isTrusted(peer, trustedProxies) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard CIDR.parseAddress(hop) != nil else { return peer }
            if !isTrusted(hop, trustedProxies) { return hop }
        }
        return hops.first ?? peer
    }

    /// Whether `ip` lies in one of the trusted networks.
    public static func isTrusted(_ ip: String, _ trustedProxies: [CIDR]) -> Bool {
        trustedProxies.contains { $0.contains(ip) }
    }
}
