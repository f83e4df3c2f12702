import GatehouseCore
import HTTPTypes

/// A mailed link's token, moved out of the URL. `GET /auth/password/reset?token=…` (and the
/// verification link) answers 303 to the same path without the query and keeps the token in a
/// cookie for that path alone, as Django's reset view does: a live token is then in no
/// `Referer`, no browser history and no front proxy's access log. `SameSite=Lax`, because the
/// link is opened from a mail client (another site) and the redirect must still carry it.
struct LinkTokenCookie: Sendable {
    /// The cookie's name (`__Secure-` with `cookie.secure`; `__Host-` would need `Path=/`).
    let name: String
    /// Whether it carries `Secure`.
    let secure: Bool

    init(_ cookie: CookieConfiguration) {
        secure = cookie.secure
        name = (cookie.secure ? "__Secure-" : "") + "gatehouse_link"
    }

    /// The `Set-Cookie` keeping `token` for the page at `path` (an hour at most: the token's
    /// own lifetime is the server's to check).
    func keep(_ token: String, path: String) -> String {
        "\(name)=\(token); Max-Age=3600; Path=\(path); HttpOnly; SameSite=Lax\(secure ? "; Secure" : "")"
    }

    /// The `Set-Cookie` dropping it, once the link has been used.
    func clear(path: String) -> String {
        "\(name)=; Max-Age=0; Path=\(path); HttpOnly; SameSite=Lax\(secure ? "; Secure" : "")"
    }

    /// The token the browser kept, if it is shaped like one.
    func token(in headers: HTTPFields) -> String? {
        headers.tokenCookie(named: name)
    }
}

extension HTTPFields {
    /// The first cookie called `name`, if it holds a token as ``SessionToken`` makes them
    /// (43 base64url characters): what the pages' CSRF and link cookies carry.
    func tokenCookie(named name: String) -> String? {
        CookieHeader.values(named: name, in: self[values: .cookie], atMost: 1).first.map(String.init).flatMap { SessionToken(cookieValue: $0) != nil ? $0 : nil }
    }
}
