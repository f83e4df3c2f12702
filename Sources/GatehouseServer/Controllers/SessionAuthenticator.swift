import Foundation
import GatehouseCore
import GatehouseStore
import Hummingbird

/// Finds the session a request's cookie stands for: where every session is validated.
struct SessionAuthenticator: Sendable {
    let store: any AuthStore
    let cookie: CookieConfiguration

    /// What the request's cookies amount to.
    enum Outcome {
        /// A live session.
        case authenticated(User, Session)
        /// No session cookie at all.
        case anonymous
        /// A cookie that is garbage, expired, revoked or belongs to a disabled user.
        case rejected
    }

    /// Token hashes of every well-formed session cookie on the request.
    func tokenHashes(_ request: Request) -> [TokenHash] {
        CookieHeader.values(named: cookie.name, in: request.headers[values: .cookie])
            .compactMap { SessionToken(cookieValue: $0)?.hash }
    }

    /// Validates the request's session cookies (see ``authenticate(headers:)``).
    func authenticate(_ request: Request) async throws -> Outcome {
        try await authenticate(headers: request.headers)
    }

    /// Validates the request's session cookies against the store; a store error propagates
    /// (and becomes a 5xx), so a failure never authenticates anyone (I5).
    func authenticate(headers: HTTPFields) async throws -> Outcome {
        let presented = CookieHeader.values(named: cookie.name, in: headers[values: .cookie])
        guard !presented.isEmpty else { return .anonymous }
        for value in presented {
            // Garbage never reaches the store: only well-formed tokens are hashed and looked up.
            guard let token = SessionToken(cookieValue: value) else { continue }
            if case .valid(let user, let session) = try await store.validateSession(token.hash, now: Date()) {
                return .authenticated(user, session)
            }
        }
        return .rejected
    }
}
