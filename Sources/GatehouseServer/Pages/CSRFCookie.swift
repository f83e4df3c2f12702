import GatehouseCore
import HTTPTypes

/// The pages' CSRF token, on top of the `Origin` check (``CrossSiteMiddleware``): a random
/// value in a host-only cookie that every form repeats in `csrf_token` (double submit). With
/// `cookie.secure` the cookie is `__Host-`, so a sibling subdomain cannot plant one; it is
/// HttpOnly, so no script reads it. `SameSite=Lax`, not `Strict`: a login page opened from
/// another site (a mail, the app's own domain) must see the cookie the browser already has,
/// or it would issue a new one and void the forms open in other tabs; the token is a secret
/// either way, and no other site can read it or post it.
struct CSRFCookie: Sendable {
    /// The cookie's name.
    let name: String
    /// Whether it carries `Secure`.
    let secure: Bool

    init(_ cookie: CookieConfiguration) {
        secure = cookie.secure
        name = (cookie.secure ? "__Host-" : "") + "gatehouse_csrf"
    }

    /// The request's token, if it carries a well-formed one.
    func token(in headers: HTTPFields) -> String? {
        headers.tokenCookie(named: name)
    }

    /// The token to put in the page's forms, and the `Set-Cookie` to send when it is new.
    func issue(for headers: HTTPFields) -> (token: String, setCookie: String?) {
        if let token = token(in: headers) { return (token, nil) }
        // 32 random bytes, base64url: what a session token is made of.
        let token = SessionToken.generate().cookieValue
        return (token, "\(name)=\(token); Path=/; HttpOnly; SameSite=Lax\(secure ? "; Secure" : "")")
    }

    /// Whether a form's `csrf_token` matches the request's cookie (compared in constant time).
    func admits(_ submitted: String?, headers: HTTPFields) -> Bool {
        guard let submitted, let expected = token(in: headers), submitted.utf8.count == expected.utf8.count else { return false }
        return zip(submitted.utf8, expected.utf8).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
