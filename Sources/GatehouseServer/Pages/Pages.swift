import GatehouseCore
import HTTPTypes
import Hummingbird
import NIOCore

/// What every HTML answer shares (SPEC §2.5): the templates, the CSRF cookie and the pages'
/// security headers. Built once at startup; a template override that does not parse stops it.
struct Pages: Sendable {
    typealias Page = PageTemplates.Page

    let templates: PageTemplates
    let csrf: CSRFCookie
    let linkToken: LinkTokenCookie
    let headers: PageSecurityHeaders
    /// Where the error pages' "Log in" link goes (`login_url`).
    let loginURL: String

    init(_ configuration: GatehouseConfiguration) throws {
        templates = try PageTemplates(configuration.pages)
        csrf = CSRFCookie(configuration.cookie)
        linkToken = LinkTokenCookie(configuration.cookie)
        loginURL = configuration.loginURL
        headers = PageSecurityHeaders(allowedRedirectHosts: configuration.allowedRedirectHosts, logoURL: configuration.pages.logoURL)
    }

    /// `page` as the answer to a request with `requestHeaders`: its forms carry the browser's
    /// CSRF token, issued now (with its cookie) if the browser has none yet.
    func response(
        _ page: Page, title: String, status: HTTPResponse.Status = .ok, values: [String: Any] = [:], requestHeaders: HTTPFields, headers extra: HTTPFields = [:]
    ) -> Response {
        let (token, setCookie) = csrf.issue(for: requestHeaders)
        var values = values
        values["csrf_token"] = token
        var headers = extra
        if let setCookie { headers.append(HTTPField(name: .setCookie, value: setCookie)) }
        return html(templates.render(page, title: title, values), status: status, headers: headers)
    }

    /// An HTML document as an answer, with the pages' headers.
    func html(_ document: String, status: HTTPResponse.Status, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "text/html; charset=utf-8"
        self.headers.apply(to: &headers)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: document)))
    }

    /// The page a browser is shown for `error`.
    func errorDocument(_ error: AuthError, requestId: String) -> String {
        let title: String
        switch error.status {
        case 401: title = "Log in to continue"
        case 403: title = "Not allowed"
        case 404: title = "Not found"
        case 429: title = "Too many attempts"
        case 502: title = "The app is not answering"
        case 503: title = "Busy right now"
        case 504: title = "The app took too long"
        case 400..<500: title = "That request did not work"
        default: title = "Something went wrong"
        }
        var values: [String: Any] = ["body": error.message, "status": error.status, "code": error.code, "request_id": requestId]
        if error.status == 401 || error.status == 403 { values["login"] = loginURL }
        return templates.render(.error, title: title, values)
    }

    /// `answer` as a browser navigating (GET or HEAD asking for HTML) should see it: an error
    /// becomes a page in the pages' design with the same status and headers; anything else,
    /// and every answer to a program, is left as it is (JSON clients keep JSON).
    func forBrowser(_ answer: GatewayAnswer, method: String, accept: String?) -> GatewayAnswer {
        guard let error = answer.error, GatewayPolicy.isBrowserNavigation(method: method, accept: accept) else { return answer }
        var headers = answer.headers
        headers[.contentType] = "text/html; charset=utf-8"
        self.headers.apply(to: &headers)
        return GatewayAnswer(status: answer.status, headers: headers, body: errorDocument(error, requestId: headers[.xRequestId] ?? ""), error: error)
    }
}
