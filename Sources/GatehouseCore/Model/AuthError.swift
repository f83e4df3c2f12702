/// An error the API answers with: a status, a stable snake_case code and a human message (SPEC §2).
public struct AuthError: Error, Sendable, Equatable {
    /// HTTP status.
    public var status: Int
    /// The `error` field: stable, for programs.
    public var code: String
    /// The `message` field: for people.
    public var message: String
    /// Per-field validation messages, for 422.
    public var fields: [String: String]
    /// Seconds to wait, sent as `Retry-After`.
    public var retryAfter: Int?

    /// Creates an error.
    public init(status: Int, code: String, message: String, fields: [String: String] = [:], retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.retryAfter = retryAfter
    }

    /// 400: the body is not JSON or a form, or not an object.
    public static func malformedBody(_ detail: String) -> AuthError {
        AuthError(status: 400, code: "malformed_body", message: detail)
    }

    /// 401: login failed; the same for an unknown email and a wrong password.
    public static let invalidCredentials = AuthError(status: 401, code: "invalid_credentials", message: "Invalid email or password.")

    /// 401: no valid session.
    public static let unauthenticated = AuthError(status: 401, code: "unauthenticated", message: "Not logged in.")

    /// 404: no such endpoint.
    public static let notFound = AuthError(status: 404, code: "not_found", message: "No such endpoint.")

    /// 409: signup with an email that has an account.
    public static let emailTaken = AuthError(status: 409, code: "email_taken", message: "An account with this email already exists.")

    /// 413: the body is larger than allowed.
    public static func payloadTooLarge(limit: Int) -> AuthError {
        AuthError(status: 413, code: "payload_too_large", message: "Request body exceeds \(limit / 1024) KiB.")
    }

    /// 415: neither JSON nor an HTML form.
    public static let unsupportedMediaType = AuthError(
        status: 415, code: "unsupported_media_type",
        message: "Send application/json or application/x-www-form-urlencoded."
    )

    /// 422: fields present but invalid, or missing.
    public static func validation(_ fields: [String: String]) -> AuthError {
        AuthError(status: 422, code: "validation_error", message: "Some fields are invalid.", fields: fields)
    }

    /// 503: the password hashing queue is full.
    public static let overloaded = AuthError(
        status: 503, code: "overloaded", message: "Too many logins in progress; retry shortly.", retryAfter: 1
    )

    /// 429: past an `abuse.*` limit; `Retry-After` says when the window closes.
    public static func rateLimited(retryAfter: Int) -> AuthError {
        AuthError(status: 429, code: "rate_limited", message: "Too many attempts; retry in \(retryAfter) s.", retryAfter: retryAfter)
    }

    /// 403: a state change or WebSocket upgrade from another site (CSRF, login CSRF,
    /// cross-site WebSocket hijacking).
    public static let crossSite = AuthError(status: 403, code: "csrf", message: "Cross-site request refused.")

    /// 403: a wrong current password for a change that needs it (password change, MFA off).
    public static let wrongPassword = AuthError(status: 403, code: "invalid_credentials", message: "The password is not right.")

    /// 403: `require_verified_email` and a user whose email is not verified yet.
    public static let emailNotVerified = AuthError(status: 403, code: "email_not_verified", message: "Verify your email address first: follow the link in the mail we sent.")

    /// 400: a reset or verification token that is unknown, used, expired or void.
    public static let invalidToken = AuthError(status: 400, code: "invalid_token", message: "This link is invalid or has expired; ask for a new one.")

    /// 401: an `mfa_token` that is unknown, used or older than five minutes.
    public static let invalidMFAToken = AuthError(status: 401, code: "invalid_token", message: "The login has expired; enter your email and password again.")

    /// 401: a wrong second-factor code (TOTP or recovery code).
    public static let invalidCode = AuthError(status: 401, code: "invalid_credentials", message: "Invalid code.")

    /// 404: a session that is not one of the caller's.
    public static let sessionNotFound = AuthError(status: 404, code: "not_found", message: "No such session.")

    /// 409: a state the request does not apply to (`mfa_already_enabled`, `mfa_setup_required`, …).
    public static func conflict(_ code: String, _ message: String) -> AuthError {
        AuthError(status: 409, code: code, message: message)
    }

    /// 500: something failed that the client cannot fix; details go to the log only.
    public static let internalError = AuthError(status: 500, code: "internal_error", message: "Internal error.")

    /// 502: the upstream could not be reached, or reset the exchange before answering.
    public static let upstreamUnavailable = AuthError(status: 502, code: "upstream_unavailable", message: "The upstream could not be reached.")

    /// 504: the upstream did not answer within `proxy.response_timeout`.
    public static let upstreamTimeout = AuthError(status: 504, code: "upstream_timeout", message: "The upstream did not answer in time.")
}
