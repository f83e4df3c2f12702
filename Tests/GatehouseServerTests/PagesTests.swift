import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import Testing

@testable import GatehouseServer

/// A browser's state for the pages: its CSRF cookie and the token the pages' forms carry.
struct PageForm: Sendable {
    let cookie: String
    let token: String

    /// The CSRF cookie and token of a fresh browser, from `GET path`.
    static func open(_ api: any HTTPTarget, _ path: String = "/auth/login", headers extra: [String: String] = [:]) async throws -> PageForm {
        var headers: HTTPFields = [.accept: "text/html"]
        for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
        let page = try await api.send(.get, path, headers: headers, body: nil)
        let cookie = try #require(page.setCookies.first { $0.hasPrefix("gatehouse_csrf=") }).prefix { $0 != ";" }
        let marker = #"name="csrf_token" value=""#
        let start = try #require(page.body.range(of: marker)).upperBound
        return PageForm(cookie: String(cookie), token: String(page.body[start...].prefix { $0 != "\"" }))
    }

    /// Posts `fields` (and the token) as an HTML form; `session` adds the session cookie.
    func post(
        _ api: any HTTPTarget, _ path: String, _ fields: [(String, String)], session: String? = nil, token: String? = nil, headers extra: [String: String] = [:]
    ) async throws -> HTTPResult {
        var headers = HTTPFields()
        for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
        headers[.contentType] = "application/x-www-form-urlencoded"
        headers[.accept] = "text/html"
        headers[.cookie] = [cookie, session.map { "gatehouse_session=\($0)" }].compactMap { $0 }.joined(separator: "; ")
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = ([("csrf_token", token ?? self.token)] + fields)
            .map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
        return try await api.send(.post, path, headers: headers, body: body)
    }
}

@Suite("Pages (SPEC §2.5)")
struct PagesTests {
    static let password = "pages test password"

    @Test("every page is served as HTML with the pages' headers and a CSRF cookie", arguments: [
        "/auth/login", "/auth/signup", "/auth/password/forgot",
    ])
    func pages(path: String) async throws {
        try await TestGatehouse.run(.live) { api, _ in
            let page = try await api.send(.get, path, headers: [.accept: "text/html"], body: nil)
            #expect(page.status == 200)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.headers[.cacheControl] == "no-store")
            #expect(page.headers[.xFrameOptions] == "DENY")
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("default-src 'none'") && policy.contains("form-action 'self'") && !policy.contains("script-src"))
            #expect(page.headers[values: .contentSecurityPolicy].count == 1)
            #expect(page.setCookies.contains { $0.hasPrefix("gatehouse_csrf=") && $0.contains("HttpOnly") && $0.contains("SameSite=Lax") })
            #expect(page.body.contains(#"name="csrf_token""#))
            let css = try await api.send(.get, "/auth/assets/style.css", headers: [:], body: nil)
            #expect(css.status == 200 && css.headers[.contentType] == "text/css; charset=utf-8" && css.body.contains("#2563eb"))
        }
    }

    @Test("a mailed link's token leaves the URL (303, a cookie for that page alone) and rides in the form", arguments: ["/auth/password/reset", "/auth/email/verify"])
    func linkToken(path: String) async throws {
        try await TestGatehouse.run(.live) { api, _ in
            let token = SessionToken.generate().cookieValue
            let link = try await api.send(.get, "\(path)?token=\(token)", headers: [.accept: "text/html"], body: nil)
            #expect(link.status == 303)
            #expect(link.headers[.location] == path)
            let cookie = try #require(link.setCookies.first)
            #expect(cookie == "gatehouse_link=\(token); Max-Age=3600; Path=\(path); HttpOnly; SameSite=Lax")
            let page = try await api.send(.get, path, headers: [.accept: "text/html", .cookie: "gatehouse_link=\(token)"], body: nil)
            #expect(page.status == 200)
            #expect(page.body.contains(#"name="token" value="\#(token)""#))
            #expect(page.headers[.referrerPolicy] == "same-origin")
            for broken in ["\(path)?token=short", path] {
                let invalid = try await api.send(.get, broken, headers: [.accept: "text/html"], body: nil)
                #expect(invalid.status == 400)
                #expect(invalid.body.contains("This link is incomplete"))
            }
        }
    }

    @Test("a form without the CSRF token, or with another browser's, changes nothing: 403 and the page again with a working token")
    func csrf() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            let form = try await PageForm.open(api, "/auth/signup")
            let other = try await PageForm.open(api, "/auth/signup")
            #expect(form.token != other.token)
            let fields = [("email", "csrf@example.com"), ("password", Self.password)]
            for token in ["", other.token, String(form.token.dropLast()) + (form.token.hasSuffix("A") ? "B" : "A")] {
                let refused = try await form.post(api, "/auth/signup", fields, token: token)
                #expect(refused.status == 403)
                #expect(refused.body.contains("This form had expired"))
                #expect(refused.body.contains(#"value="csrf@example.com""#))
                #expect(!refused.body.contains(Self.password))
                #expect(refused.body.contains(form.token))
            }
            // No cookie at all: refused, and the page brings one.
            var headers = HTTPFields()
            headers[.contentType] = "application/x-www-form-urlencoded"
            let cookieless = try await api.send(.post, "/auth/signup", headers: headers, body: "csrf_token=\(form.token)&email=csrf%40example.com&password=x")
            #expect(cookieless.status == 403)
            #expect(cookieless.setCookies.contains { $0.hasPrefix("gatehouse_csrf=") })
            #expect(try await gatehouse.count("users") == 0)
            // JSON clients are not asked for it (the Origin check guards them, SPEC §2.4).
            #expect(try await api.signup("csrf@example.com", Self.password).status == 201)
            let accepted = try await form.post(api, "/auth/login", fields)
            #expect(accepted.status == 303)
        }
    }

    @Test("forms: field errors with input kept (never the password), rd validated, 303 after success")
    func forms() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            let form = try await PageForm.open(api)
            let weak = try await form.post(api, "/auth/signup?rd=%2Fapp%2Freports", [("email", "forms@example.com"), ("password", "short")])
            #expect(weak.status == 422)
            #expect(weak.headers[.contentType] == "text/html; charset=utf-8")
            #expect(weak.body.contains(#"class="field-error" id="password-error""#))
            #expect(weak.body.contains(#"value="forms@example.com""#))
            #expect(weak.body.contains(#"action="/auth/signup?rd=/app/reports""#))
            let created = try await form.post(api, "/auth/signup?rd=%2Fapp%2Freports", [("email", "forms@example.com"), ("password", Self.password)])
            #expect(created.status == 303)
            #expect(created.headers[.location] == "/app/reports")
            #expect(created.sessionToken() != nil)
            let wrong = try await form.post(api, "/auth/login", [("email", "forms@example.com"), ("password", "not the password")])
            #expect(wrong.status == 401)
            #expect(wrong.body.contains(#"role="alert">Invalid email or password."#))
            #expect(!wrong.body.contains("not the password"))
            for (rd, location) in [("/app?x=1", "/app?x=1"), ("//evil.com", "/"), ("https://evil.com/", "/"), ("javascript:alert(1)", "/")] {
                let login = try await form.post(api, "/auth/login", [("email", "forms@example.com"), ("password", Self.password), ("rd", rd)])
                #expect(login.status == 303)
                #expect(login.headers[.location] == location, "rd \(rd)")
            }
            let session = try #require(try await form.post(api, "/auth/login", [("email", "forms@example.com"), ("password", Self.password)]).sessionToken())
            let logout = try await form.post(api, "/auth/logout", [], session: session)
            #expect(logout.status == 303)
            #expect(logout.headers[.location] == "/auth/login?notice=logged_out")
            #expect(try await api.get("/auth/me", cookie: session).status == 401)
            #expect(try await gatehouse.count("users") == 1)
        }
    }

    @Test("a rate-limited form is its page again with 429 and Retry-After; a logged-in visitor of the login page goes on to rd")
    func limitedAndSignedIn() async throws {
        try await TestGatehouse.run(.live, configure: { $0.abuse.loginPerIP = RateLimit(1, per: .seconds(600)) }) { api, _ in
            let session = try #require(try await api.signup("limit@example.com", Self.password).sessionToken())
            let form = try await PageForm.open(api)
            #expect(try await form.post(api, "/auth/login", [("email", "limit@example.com"), ("password", "wrong password")]).status == 401)
            let limited = try await form.post(api, "/auth/login", [("email", "limit@example.com"), ("password", Self.password)])
            #expect(limited.status == 429)
            #expect(limited.headers[.retryAfter].flatMap(Int.init) != nil)
            #expect(limited.headers[.contentType] == "text/html; charset=utf-8")
            #expect(limited.body.contains(#"role="alert""#) && limited.body.contains(#"value="limit@example.com""#))
            var headers = HTTPFields()
            headers[.cookie] = "gatehouse_session=\(session)"
            let signedIn = try await api.send(.get, "/auth/login?rd=%2Fapp%2Fx", headers: headers, body: nil)
            #expect(signedIn.status == 303)
            #expect(signedIn.headers[.location] == "/app/x")
            let hostile = try await api.send(.get, "/auth/login?rd=%2F%2Fevil.com", headers: headers, body: nil)
            #expect(hostile.headers[.location] == "/auth/account")
        }
    }

    @Test("the other encodings a form can send (text/plain, multipart) are refused before any handler runs: 415, nothing done")
    func otherEncodings() async throws {
        try await TestGatehouse.run(.live) { api, gatehouse in
            let session = try #require(try await api.signup("enc@example.com", Self.password).sessionToken())
            for type in ["text/plain", "multipart/form-data; boundary=x"] {
                for path in ["/auth/logout-all", "/auth/logout", "/auth/mfa/totp/setup", "/auth/email/resend", "/auth/sessions/x/revoke"] {
                    var headers = HTTPFields()
                    headers[.contentType] = type
                    headers[.cookie] = "gatehouse_session=\(session)"
                    let refused = try await api.send(.post, path, headers: headers, body: "x=1")
                    #expect(refused.status == 415, "\(type) \(path)")
                }
            }
            #expect(try await api.get("/auth/me", cookie: session).status == 200)
            #expect(try await gatehouse.count("sessions") == 1)
            let head = try await api.send(.head, "/auth/login", headers: [:], body: nil)
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
        }
    }

    @Test("a dead link's token is dropped with its page; the verification link's page offers a verification link")
    func deadLinks() async throws {
        try await TestGatehouse.run(.live) { api, _ in
            let form = try await PageForm.open(api, "/auth/password/forgot")
            let dead = try await form.post(api, "/auth/password/reset", [("token", SessionToken.generate().cookieValue), ("new_password", Self.password)])
            #expect(dead.status == 400)
            #expect(dead.body.contains("This link has expired"))
            #expect(dead.setCookies.contains("gatehouse_link=; Max-Age=0; Path=/auth/password/reset; HttpOnly; SameSite=Lax"))
            let incomplete = try await api.send(.get, "/auth/email/verify", headers: [.accept: "text/html"], body: nil)
            #expect(incomplete.status == 400)
            #expect(incomplete.body.contains("Ask for a new verification link"))
        }
    }

    @Test("behind forward auth, the original request's method decides: a browser's POST gets JSON, its GET the 302")
    func forwardMethod() async throws {
        try await TestGatehouse.run(.live, configure: { $0.trustedProxies = [CIDR("127.0.0.1")!] }) { api, _ in
            for connection in ["keep-alive", "close"] {
                let post = try await api.request(.get, "/auth/forward", headers: ["Accept": "text/html", "X-Forwarded-Method": "POST", "Connection": connection])
                #expect(post.status == 401)
                #expect(post.headers[.contentType] == "application/json; charset=utf-8", "\(connection)")
                let nginx = try await api.request(.get, "/auth/verify", headers: ["Accept": "text/html", "X-Original-Method": "POST", "Connection": connection])
                #expect(nginx.headers[.contentType] == "application/json; charset=utf-8", "\(connection)")
                let page = try await api.request(.get, "/auth/verify", headers: ["Accept": "text/html", "X-Original-Method": "GET", "Connection": connection])
                #expect(page.headers[.contentType] == "text/html; charset=utf-8", "\(connection)")
            }
        }
    }

    @Test("with login_url pointing elsewhere, the pages send people there (rd kept, no notices)")
    func ownLoginURL() async throws {
        try await TestGatehouse.run(.live, configure: { $0.loginURL = "https://sso.example.com/login?app=1" }) { api, _ in
            let account = try await api.send(.get, "/auth/account", headers: [.accept: "text/html"], body: nil)
            #expect(account.headers[.location] == "https://sso.example.com/login?app=1&rd=/auth/account")
            let session = try #require(try await api.signup("sso@example.com", Self.password).sessionToken())
            let form = try await PageForm.open(api, "/auth/password/forgot")
            let logout = try await form.post(api, "/auth/logout", [], session: session)
            #expect(logout.headers[.location] == "https://sso.example.com/login?app=1")
            let missing = try await api.send(.get, "/auth/sessions", headers: [.accept: "text/html"], body: nil)
            #expect(missing.body.contains(#"href="https://sso.example.com/login?app=1""#))
        }
    }

    @Test("the account page needs a session and lists it; the form twins of DELETE revoke a session and turn TOTP off")
    func account() async throws {
        try await TestGatehouse.run(.live) { api, _ in
            let anonymous = try await api.send(.get, "/auth/account", headers: [.accept: "text/html"], body: nil)
            #expect(anonymous.status == 303)
            #expect(anonymous.headers[.location] == "/auth/login?rd=/auth/account")
            let mine = try #require(try await api.signup("acct@example.com", Self.password).sessionToken())
            let other = try #require(try await api.login("acct@example.com", Self.password).sessionToken())
            let form = try await PageForm.open(api)
            var headers = HTTPFields()
            headers[.cookie] = "\(form.cookie); gatehouse_session=\(mine)"
            let page = try await api.send(.get, "/auth/account", headers: headers, body: nil)
            #expect(page.status == 200)
            #expect(page.body.contains("acct@example.com"))
            let ids = page.body.ranges(of: #"action="/auth/sessions/"#).map { String(page.body[$0.upperBound...].prefix { $0 != "/" }) }
            #expect(ids.count == 1, "only the other session has a revoke button")
            let revoked = try await form.post(api, "/auth/sessions/\(ids[0])/revoke", [], session: mine)
            #expect(revoked.status == 303)
            #expect(revoked.headers[.location] == "/auth/account?notice=session_revoked")
            #expect(try await api.get("/auth/me", cookie: other).status == 401)
            #expect(try await api.get("/auth/me", cookie: mine).status == 200)
            let setup = try await form.post(api, "/auth/mfa/totp/setup", [], session: mine)
            #expect(setup.status == 200 && setup.body.contains("<svg"))
            let wrong = try await form.post(api, "/auth/mfa/totp/disable", [("password", "wrong password")], session: mine)
            // TOTP is not on yet: the disable answers the account page with the error, not a 5xx.
            #expect(wrong.status == 403)
            #expect(wrong.body.contains("The password is not right."))
        }
    }

    @Test("browser navigations get error pages, programs keep JSON, on both transports", arguments: [false, true])
    func errorPages(fastPath: Bool) async throws {
        // `Connection: close` is one of the requests the event loop leaves to the router.
        let connection = fastPath ? "keep-alive" : "close"
        try await TestGatehouse.withUpstream { api, gatehouse, _ in
            // The verify endpoint too: Caddy and Traefik pass a refusal on to the browser.
            for (path, status) in [("/auth/no-such-page", 404), ("/down/x", 502), ("/auth/verify", 401)] {
                let html = try await api.request(.get, path, headers: ["Accept": "text/html,application/xhtml+xml", "Connection": connection])
                #expect(html.status == status)
                #expect(html.headers[.contentType] == "text/html; charset=utf-8", "\(path)")
                #expect(html.body.hasPrefix("<!DOCTYPE html>"))
                #expect(html.body.contains("Error \(status)"))
                #expect(html.headers[values: .contentSecurityPolicy].count == 1)
                let json = try await api.request(.get, path, headers: ["Accept": "application/json"])
                #expect(json.status == status)
                #expect(json.headers[.contentType] == "application/json; charset=utf-8")
                let posted = try await api.request(.post, path, headers: ["Accept": "text/html", "Content-Type": "application/json"], body: "{}")
                #expect(posted.headers[.contentType] == "application/json; charset=utf-8", "a form post's error stays an API answer")
            }
            for (path, status) in [("/down/x", 502), ("/auth/verify", 401)] {
                let served = fastPath ? "served=fast_path status=\(status)" : "served=router status=\(status)"
                #expect(gatehouse.logs.text.split(separator: "\n").contains { $0.contains("path=\(path) ") && $0.contains(served) }, "\(path)")
            }
        }
    }

    @Test("the account page names devices from their user agents")
    func deviceNames() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on macOS"),
            ("curl/8.5.0", "curl/8.5.0"),
            ("", "Unknown device"),
            (String(repeating: "x", count: 50), String(repeating: "x", count: 40) + "…"),
        ]
        for (agent, name) in cases { #expect(DeviceName.summary(agent) == name, "\(agent)") }
    }

    @Test("every page renders as valid HTML (html5lib, strict), with unique ids and every field labelled")
    func validity() async throws {
        let templates = try PageTemplates(PagesConfiguration())
        let error = AuthError.validation(["email": "Enter a valid email address.", "password": "Too short.", "code": "Wrong.", "new_password": "Too short.", "current_password": "Wrong."])
        let common: [String: Any] = ["csrf_token": "t", "notice": "A notice.", "alert": "An alert.", "errors": error.fields, "values": ["email": "a@example.com", "token": "x", "mfa_token": "y"], "rd_query": "/app"]
        var documents: [String: String] = [:]
        for page in PageTemplates.Page.allCases {
            var values = common
            switch page {
            case .account:
                values.merge(["email": "a@example.com", "email_verified": false, "mail_enabled": true, "mfa_enabled": false, "wide": true, "sessions": [
                    ["id": "s1", "ip": "127.0.0.1", "device": "Firefox on Linux", "last_seen_at": "2026-01-01T00:00:00Z", "last_seen": "1 Jan 2026, 00:00 UTC", "current": true],
                    ["id": "s2", "ip": "10.0.0.2", "device": "Safari on iPhone", "last_seen_at": "2026-01-01T00:00:00Z", "current": false],
                ]]) { $1 }
            case .totpSetup:
                values.merge(["secret": "ABCDEFGH", "qr_svg": try QRCode(encoding: "otpauth://totp/x").svg(label: "QR code")]) { $1 }
            case .recoveryCodes:
                values["recovery_codes"] = ["aaaa-bbbb", "cccc-dddd"]
            case .error:
                values.merge(["body": "Nope.", "status": 404, "code": "not_found", "request_id": "r1", "login": "/auth/login"]) { $1 }
            case .message:
                values.merge(["body": "Done.", "link_href": "/auth/login", "link_text": "Log in"]) { $1 }
            default:
                break
            }
            documents[page.rawValue] = templates.render(page, title: "Title", values)
        }
        // The account page with TOTP on shows its other form.
        documents["account-mfa-on"] = templates.render(.account, title: "Title", ["csrf_token": "t", "email": "a@example.com", "mfa_enabled": true, "email_verified": true, "sessions": [] as [Any]])
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (name, document) in documents { try document.write(toFile: directory.file("\(name).html"), atomically: true, encoding: .utf8) }
        let report = try await runPython(Self.checker, arguments: [directory.path])
        #expect(report.trimmingCharacters(in: .whitespacesAndNewlines) == "ok \(documents.count)", "\(report)")
    }

    /// html5lib's strict parser (every parse error is an error), then what a parser allows but a
    /// page must not do: duplicate ids, a field without a label, a reference to a missing id.
    static let checker = """
        import glob, os, sys, html5lib
        problems = []
        files = sorted(glob.glob(os.path.join(sys.argv[1], '*.html')))
        for path in files:
            name = os.path.basename(path)
            try:
                tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(open(path, 'rb').read())
            except Exception as error:
                problems.append(f'{name}: {error}')
                continue
            ids = [e.get('id') for e in tree.iter() if e.get('id')]
            problems += [f'{name}: duplicate id {i}' for i in set(ids) if ids.count(i) > 1]
            labelled = {e.get('for') for e in tree.iter('label')}
            for field in tree.iter('input'):
                if field.get('type') not in ('hidden',) and field.get('hidden') is None and field.get('id') not in labelled:
                    problems.append(f'{name}: input {field.get("name")} has no label')
            for e in tree.iter():
                for ref in (e.get('aria-describedby') or '').split():
                    if ref not in ids:
                        problems.append(f'{name}: aria-describedby {ref} names no element')
            if tree.find('.//html[@lang]') is None and tree.get('lang') is None:
                problems.append(f'{name}: no lang')
        print('\\n'.join(problems) if problems else f'ok {len(files)}')
        """

    @Test("a template in pages.template_dir replaces the built-in one; a broken one stops startup naming the file")
    func overrides() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try "<p id=\"custom\">Welcome to {{product}}</p>".write(toFile: directory.file("login.mustache"), atomically: true, encoding: .utf8)
        try await TestGatehouse.run(.live, configure: {
            $0.pages.templateDir = directory.path
            $0.pages.productName = "Acme Portal"
            $0.pages.accentColor = "#aa3300"
        }) { api, _ in
            let page = try await api.send(.get, "/auth/login", headers: [.accept: "text/html"], body: nil)
            #expect(page.body.contains(#"<p id="custom">Welcome to Acme Portal</p>"#))
            #expect(page.body.contains("<title>Log in · Acme Portal</title>"))
            #expect(try await api.send(.get, "/auth/assets/style.css", headers: [:], body: nil).body.contains("#aa3300"))
        }
        try "{{#broken}}".write(toFile: directory.file("signup.mustache"), atomically: true, encoding: .utf8)
        var configuration = GatehouseConfiguration()
        configuration.pages.templateDir = directory.path
        #expect(throws: PageTemplateError.self) { try PageTemplates(configuration.pages) }
        #expect((try? PageTemplates(configuration.pages)) == nil)
        do {
            _ = try PageTemplates(configuration.pages)
        } catch {
            #expect("\(error)".contains(directory.file("signup.mustache")))
        }
    }

    @Test("conf/pages/ holds exactly the built-in templates, to start an override from")
    func confCopies() throws {
        let names = PageTemplates.Page.allCases.map { "\($0.rawValue).mustache" } + ["layout.mustache", "style.css"]
        let shipped = try FileManager.default.contentsOfDirectory(atPath: packageRoot + "/conf/pages").sorted()
        #expect(shipped == names.sorted())
        for name in names {
            let copy = try String(contentsOfFile: packageRoot + "/conf/pages/" + name, encoding: .utf8)
            let builtIn = try String(contentsOfFile: packageRoot + "/Sources/GatehouseServer/Resources/pages/" + name, encoding: .utf8)
            #expect(copy == builtIn, "conf/pages/\(name) differs from the built-in template")
        }
    }
}

@Suite("Pages in a real browser (SPEC §2.5)", .serialized)
struct PagesBrowserTests {
    @Test("headless Chromium: protected page → login → signup → the page with the identity; verify; revoke a session; TOTP on; logout; login with a code; reset by mail; error pages; axe-core on each")
    func walk() async throws {
        try await EchoUpstream.with { appPort in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let mail = directory.file("mail")
            // The mailed links and the Origin check both name Gatehouse's own origin, so the port is chosen first.
            let port = try freePort()
            let config = try writeTestConfiguration(in: directory, extra: """
                upstreams:
                  app: http://127.0.0.1:\(appPort)
                  down: http://127.0.0.1:1
                routes:
                  - {prefix: /app/, upstream: app, auth: required}
                  - {prefix: /down/, upstream: down, auth: none}
                public_url: http://127.0.0.1:\(port)
                mail:
                  mailer: file
                  file_dir: \(mail)
                """)
            let gatehouse = try await GatehouseProcess(
                configPath: config, logPath: directory.file("serve.log"), environment: ["GATEHOUSE_LOG_LEVEL": "info", "GATEHOUSE_LISTEN": "127.0.0.1:\(port)"]
            )
            defer { gatehouse.terminate() }
            do {
                let report = try await runPythonScript("browser_pages.py", arguments: ["http://\(gatehouse.address)", mail])
                #expect(report.contains(#""checked": ["login", "signup""#), "\(report)")
            } catch {
                Issue.record("\(error)\n--- gatehouse log (tail) ---\n\(gatehouse.log.suffix(4000))")
            }
        }
    }
}
