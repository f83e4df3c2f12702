import Foundation
import GatehouseCore
import GatehouseStore
import Hummingbird
import Logging

/// Finds the session a request's cookie stands for: where every session is validated, for
/// the router and for the fast path when its in-process cache cannot answer.
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
        CookieHeader.values(named: cookie.effectiveName, in: request.headers[values: .cookie])
            .compactMap { SessionToken(cookieValue: $0)?.hash }
    }

    /// Validates the request's session cookies (see ``authenticate(cookies:)``).
    func authenticate(_ request: Request) async throws -> Outcome {
        try await authenticate(cookies: CookieHeader.values(named: cookie.effectiveName, in: request.headers[values: .cookie]))
    }

    /// Validates session cookie values in order against the store; the first live one wins.
    /// A store error propagates (and becomes a 5xx), so a failure never authenticates
    /// anyone (I5).
    func authenticate(cookies presented: [Substring]) async throws -> Outcome {
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

    /// The caller's live session, or 401 `unauthenticated` (SPEC §2.4: every account endpoint
    /// that needs one). A cookie the store refused is cleared from the browser.
    func requireSession(_ request: Request) async throws -> (User, Session) {
        switch try await authenticate(request) {
        case .authenticated(let user, let session): return (user, session)
        case .anonymous: throw AuthError.unauthenticated
        case .rejected: throw SessionRequired(clearCookie: CookieHeader.clearingCookie(cookie))
        }
    }

    /// The gateway decision's view of ``authenticate(cookies:)``; a store error is logged
    /// and answered as ``SessionAnswer/failed``.
    func answer(cookies: [Substring], logger: Logger) async -> SessionAnswer {
        do {
            switch try await authenticate(cookies: cookies) {
            case .authenticated(let user, _): return .live(user.identity)
            case .anonymous: return .anonymous
            case .rejected: return .rejected
            }
        } catch {
            logger.error("session check failed; refusing", metadata: ["error": "\(error)"])
            return .failed
        }
    }

    /// The gateway decision's view of one validation (the fast path finishing a Redis reply).
    static func answer(logger: Logger, _ validation: () async throws -> SessionValidation) async -> SessionAnswer {
        do {
            guard case .valid(let user, _) = try await validation() else { return .rejected }
            return .live(user.identity)
        } catch {
            logger.error("session check failed; refusing", metadata: ["error": "\(error)"])
            return .failed
        }
    }
}

/// A 401 `unauthenticated` that also clears a dead session cookie (``APIErrorMiddleware``
/// answers it).
struct SessionRequired: Error {
    /// The `Set-Cookie` that clears it.
    let clearCookie: String
}
