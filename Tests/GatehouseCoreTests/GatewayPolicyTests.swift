import Foundation
import HTTPTypes
import Testing

@testable import GatehouseCore

@Suite("Path normalisation (SPEC §2.3)")
struct PathNormalizerTests {
    @Test(
        "paths normalise to what a route table must see",
        arguments: [
            ("/", "/"), ("/a/b", "/a/b"), ("/a/b/", "/a/b/"), ("//a///b", "/a/b"), ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"), ("/public/%2E%2e/admin", "/admin"), ("/public/.%2e/admin", "/admin"),
            ("/public/./x", "/public/x"), ("/../../etc/passwd", "/etc/passwd"), ("/a/..", "/"), ("/a/b/..", "/a/"),
            ("/%7euser/%41", "/~user/A"), ("/a%3fb", "/a%3Fb"), ("/caf%c3%a9", "/caf%C3%A9"), ("/public/..", "/"),
            ("/public/%2e", "/public/"), ("/a/./", "/a/"), ("/a%3Bv=1/b", "/a%3Bv=1/b"),
        ]
    )
    func normalise(raw: String, expected: String) {
        #expect(PathNormalizer.normalize(raw) == .success(expected))
    }

    @Test(
        "path parameters (;), encoded slashes, backslashes, control characters and broken escapes are refused",
        arguments: ["/admin;x/secret", "/a;v=1/b", "/a/b;x", "/admin/;/secret", "/public/..;/admin", "/public/..;jsessionid=1/admin", "/public/.;x/../admin", "/public/..%2fadmin", "/public%2F..%2Fadmin", "/a%5c..%5cadmin", "/a\\..\\admin", "/a%00", "/a%0d%0aX: y", "/a%", "/a%zz", "a/b", "", "/a b", "/a\tb", "/a#b", "/a?b"]
    )
    func refuse(raw: String) {
        #expect(PathNormalizer.normalize(raw) == .failure(.invalid))
    }

    @Test("the shortcut for paths that are normal already agrees with the full normaliser on 20,000 random paths")
    func shortcutAgrees() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("/./.ab%2e%2fe;?#\\ é~_-".utf8)
        var shortcuts = 0
        for _ in 0..<20_000 {
            let bytes = [UInt8(ascii: "/")] + (0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            guard PathNormalizer.isAlreadyNormal(bytes) else { continue }
            shortcuts += 1
            let path = String(decoding: bytes, as: UTF8.self)
            #expect(PathNormalizer.normalizeSegments(bytes) == .success(path), "\(path)")
        }
        // Enough of them took the shortcut for the comparison to mean something.
        #expect(shortcuts > 500)
    }
}

@Suite("Route table")
struct RouteTableTests {
    static let table = RouteTable([
        RouteConfiguration(prefix: "/", upstream: "app", auth: .required),
        RouteConfiguration(prefix: "/public/", upstream: "app", auth: .none),
        RouteConfiguration(prefix: "/api", upstream: "api", auth: .required, stripPrefix: true),
        RouteConfiguration(prefix: "/public/", host: "static.example.com", upstream: "static", auth: .none),
    ])

    @Test("longest prefix wins, on segment boundaries, host-specific first")
    func matching() {
        #expect(Self.table.match(host: "x", path: "/public/a")?.auth == RouteAuth.none)
        #expect(Self.table.match(host: "x", path: "/public")?.auth == RouteAuth.none)
        #expect(Self.table.match(host: "x", path: "/publicity")?.auth == .required)
        #expect(Self.table.match(host: "x", path: "/admin")?.upstream == "app")
        #expect(Self.table.match(host: "x", path: "/api/v1")?.upstream == "api")
        #expect(Self.table.match(host: "x", path: "/apix")?.upstream == "app")
        #expect(Self.table.match(host: "Static.Example.com:8443", path: "/public/x")?.upstream == "static")
        #expect(RouteTable([]).match(host: nil, path: "/") == nil)
    }

    @Test("a host-specific route cannot be missed by case, a trailing dot or a port; route hosts are read the same way")
    func hosts() {
        let table = RouteTable([
            RouteConfiguration(prefix: "/", upstream: "app", auth: .none),
            RouteConfiguration(prefix: "/", host: "Admin.Example.com.", upstream: "admin", auth: .required),
        ])
        for host in ["admin.example.com", "ADMIN.example.COM", "admin.example.com.", "admin.example.com.:443", "Admin.Example.Com:8080"] {
            #expect(table.match(host: host, path: "/x")?.upstream == "admin", "\(host)")
        }
        for host in ["admin.example.com..", "xadmin.example.com", "admin.example.co"] {
            #expect(table.match(host: host, path: "/x")?.upstream == "app", "\(host)")
        }
        #expect(RouteTable.canonicalHost("[::1]:8080") == "[::1]")
    }

    @Test("with case-insensitive paths, /ADMIN/x cannot miss an /admin/ route; without, case counts")
    func caseInsensitive() {
        let routes = [
            RouteConfiguration(prefix: "/", upstream: "app", auth: .none),
            RouteConfiguration(prefix: "/admin/", upstream: "app", auth: .required, stripPrefix: true),
        ]
        let folding = RouteTable(routes, caseInsensitive: true)
        for path in ["/ADMIN/x", "/Admin", "/aDmIn/x/y"] {
            #expect(folding.match(host: nil, path: path)?.auth == .required, "\(path)")
        }
        #expect(folding.match(host: nil, path: "/administrator")?.auth == RouteAuth.none)
        #expect(RouteTable.forwardedPath("/ADMIN/x", route: routes[1]) == "/x")
        #expect(RouteTable(routes).match(host: nil, path: "/ADMIN/x")?.auth == RouteAuth.none)
    }

    @Test("strip_prefix removes the prefix and keeps a leading slash")
    func strip() {
        let api = RouteConfiguration(prefix: "/api", upstream: "api", auth: .required, stripPrefix: true)
        #expect(RouteTable.forwardedPath("/api/v1/x", route: api) == "/v1/x")
        #expect(RouteTable.forwardedPath("/api", route: api) == "/")
        let keep = RouteConfiguration(prefix: "/api", upstream: "api", auth: .required)
        #expect(RouteTable.forwardedPath("/api/v1", route: keep) == "/api/v1")
    }

    @Test("matching and prefix stripping compare bytes, so a combining mark after the prefix changes neither")
    func bytes() {
        // As graphemes, "/\u{338}" is not "/" followed by a mark: byte matching keeps the
        // route that routing chose and the path that is forwarded in agreement.
        #expect(RouteTable.path("/admin/\u{338}x", isUnder: "/admin/"))
        #expect(RouteTable.path("/admin\u{338}", isUnder: "/admin") == false)
        let admin = RouteConfiguration(prefix: "/admin/", upstream: "app", auth: .required, stripPrefix: true)
        #expect(RouteTable.forwardedPath("/admin/\u{338}x", route: admin) == "/\u{338}x")
        #expect(RouteTable.forwardedPath("/admin/é", route: admin) == "/é")
        #expect(Self.table.match(host: "x", path: "/admin/\u{338}")?.upstream == "app")
    }
}

@Suite("Redirect validation (SPEC §2.3)")
struct RedirectValidatorTests {
    static let validator = RedirectValidator(allowedHosts: ["www.whitelisteddomain.tld", "app.example.com:8443", ".corp.example"])

    @Test(
        "safe targets are kept",
        arguments: [
            "/", "/app/page?x=1&y=%20z", "/a#frag", "https://www.whitelisteddomain.tld/x", "HTTP://WWW.whitelisteddomain.tld.",
            "https://app.example.com:8443/", "https://corp.example/", "https://deep.sub.corp.example/x",
            "https://www.whitelisteddomain.tld:443/",
        ]
    )
    func safe(target: String) {
        #expect(Self.validator.validate(target) == target)
    }

    @Test(
        "hostile targets are refused",
        arguments: [
            "//evil.com", "/\\evil.com", "\\\\evil.com", "https:evil.com", "https:/evil.com", "%2f%2fevil.com", "/%2f/evil.com",
            "/%09/evil.com", "/\t/evil.com", "/\n/evil.com", " /x", "https://www.whitelisteddomain.tld@evil.com",
            "https://evil.com\\@www.whitelisteddomain.tld", "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x",
            "https://evil.com", "https://www.whitelisteddomain.tld.evil.com", "https://xn--80ak6aa92e.com/",
            "https://www.whitelisteddomain.tld:8080/", "https://app.example.com/", "ftp://www.whitelisteddomain.tld",
            "https://%77ww.whitelisteddomain.tld", "https://evilcorp.example", "", "http://[::1]/", "/x\r\nSet-Cookie: a=b",
            "https://www.whitelisteddomain.tld:0/", "https://www.whitelisteddomain.tld:/", "https://www.whitelisteddomain.tld:99999/",
        ]
    )
    func hostile(target: String) {
        #expect(Self.validator.validate(target) == nil)
    }

    /// Resolves each target against the gateway's origin with a WHATWG URL parser (Node's `URL`,
    /// the parser browsers implement) and returns `protocol host` per line.
    static func resolveLikeABrowser(_ targets: [String]) throws -> [String] {
        let script = """
            const lines = require('fs').readFileSync(0, 'utf8').split('\\n').filter(l => l.length > 0);
            for (const line of lines) {
              const target = JSON.parse(line);
              try { const u = new URL(target, 'https://gateway.example/'); console.log(u.protocol + ' ' + u.host); }
              catch (e) { console.log('invalid'); }
            }
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["node", "-e", script]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let payload = targets.map { target -> String in
            let data = try! JSONSerialization.data(withJSONObject: [target])
            return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
        }.joined(separator: "\n") + "\n"
        input.fileHandleForWriting.write(Data(payload.utf8))
        try input.fileHandleForWriting.close()
        let result = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: result, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("none of the 559 open-redirect payloads sends a browser anywhere but here or the allowed host")
    func openRedirectCorpus() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/openredirects.txt").path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        #expect(lines.count >= 550)
        let validator = RedirectValidator(allowedHosts: ["www.whitelisteddomain.tld"])
        // As the query string parser hands the value over: percent-decoded once.
        let locations = lines.map { validator.validate($0.removingPercentEncoding ?? $0) ?? "/" }
        let resolved = try Self.resolveLikeABrowser(locations)
        #expect(resolved.count == lines.count)
        for (index, result) in resolved.enumerated() {
            #expect(
                ["https: gateway.example", "http: www.whitelisteddomain.tld", "https: www.whitelisteddomain.tld"].contains(result),
                "line \(index + 1): \(lines[index]) -> \(locations[index]) -> \(result)"
            )
        }
        // The check above must be able to fail: the raw payloads, unvalidated, escape.
        let unvalidated = try Self.resolveLikeABrowser(lines.map { $0.removingPercentEncoding ?? $0 })
        #expect(unvalidated.filter { !$0.hasSuffix("gateway.example") && !$0.hasSuffix("www.whitelisteddomain.tld") }.count > 100)
    }
}

@Suite("Cross-site WebSocket upgrades")
struct CrossSiteUpgradeTests {
    static func upgrade(host: String, origins: [String], websocket: Bool = true) -> HTTPRequest {
        var fields = HTTPFields()
        fields[.host] = host
        if websocket { fields[.upgrade] = "websocket" }
        for origin in origins { fields.append(HTTPField(name: .origin, value: origin)) }
        return HTTPRequest(method: .get, scheme: nil, authority: host, path: "/ws", headerFields: fields)
    }

    @Test("Origin is compared with the request's host (case, port and trailing dot aside); none passes, null, foreign or several are refused")
    func origins() {
        let facts = ConnectionFacts(peer: "192.0.2.1", trustedProxies: [])
        func crossSite(_ host: String, _ origins: [String], websocket: Bool = true) -> Bool {
            let request = Self.upgrade(host: host, origins: origins, websocket: websocket)
            return GatewayPolicy(configuration: GatehouseConfiguration()).isCrossSiteUpgrade(request, client: ForwardingContext(connection: facts, headers: request.headerFields, authority: host))
        }
        #expect(!crossSite("app.example.com", []))
        #expect(!crossSite("app.example.com", ["https://app.example.com"]))
        #expect(!crossSite("app.example.com:8443", ["https://APP.example.com.:8443"]))
        #expect(crossSite("app.example.com", ["https://evil.example"]))
        #expect(crossSite("app.example.com", ["null"]))
        #expect(crossSite("app.example.com", ["https://app.example.com.evil.example"]))
        #expect(crossSite("app.example.com", ["https://app.example.com", "https://evil.example"]))
        #expect(!crossSite("app.example.com", ["https://evil.example"], websocket: false))
    }
}

@Suite("Cross-site state changes (SPEC §2.4)")
struct CrossSitePolicyTests {
    static func fields(origin: String? = nil, site: String? = nil) -> HTTPFields {
        var fields = HTTPFields()
        if let origin { fields[.origin] = origin }
        if let site { fields[.secFetchSite] = site }
        return fields
    }

    @Test("without public_url the Origin's host must be the request's; Sec-Fetch-Site cross-site, null and several origins are refused; neither header passes")
    func byHost() {
        let policy = CrossSitePolicy(publicURL: "", allowedOrigins: [])
        #expect(!policy.isCrossSite(Self.fields(), host: "app.example.com"))
        #expect(!policy.isCrossSite(Self.fields(origin: "https://app.example.com"), host: "app.example.com"))
        #expect(!policy.isCrossSite(Self.fields(origin: "http://app.example.com:8080"), host: "app.example.com:8080"))
        #expect(!policy.isCrossSite(Self.fields(site: "same-origin"), host: "app.example.com"))
        #expect(policy.isCrossSite(Self.fields(origin: "https://evil.example"), host: "app.example.com"))
        #expect(policy.isCrossSite(Self.fields(origin: "null"), host: "app.example.com"))
        #expect(policy.isCrossSite(Self.fields(origin: "https://app.example.com, https://evil.example"), host: "app.example.com"))
        #expect(policy.isCrossSite(Self.fields(site: "cross-site"), host: "app.example.com"))
        #expect(policy.isCrossSite(Self.fields(origin: "https://app.example.com", site: "cross-site"), host: "app.example.com"))
        #expect(policy.isCrossSite(Self.fields(origin: "https://app.example.com"), host: nil))
    }

    @Test("public_url pins scheme, host and port; allowed_origins adds others, normalised as browsers send them")
    func byPublicURL() {
        let policy = CrossSitePolicy(publicURL: "https://Auth.Example.com/", allowedOrigins: ["https://spa.example.net:443", "http://localhost:3000"])
        #expect(policy.ownOrigin == "https://auth.example.com")
        #expect(!policy.isCrossSite(Self.fields(origin: "https://auth.example.com"), host: "anything"))
        #expect(policy.isCrossSite(Self.fields(origin: "http://auth.example.com"), host: "auth.example.com"))
        #expect(policy.isCrossSite(Self.fields(origin: "https://auth.example.com:8443"), host: "auth.example.com"))
        #expect(!policy.isCrossSite(Self.fields(origin: "https://spa.example.net"), host: "auth.example.com"))
        #expect(!policy.isCrossSite(Self.fields(origin: "http://localhost:3000"), host: "auth.example.com"))
        #expect(policy.isCrossSite(Self.fields(origin: "http://localhost:3001"), host: "auth.example.com"))
    }

    @Test("only state changes are checked: GET, HEAD, OPTIONS and TRACE are not")
    func methods() {
        #expect(!CrossSitePolicy.changesState(.get))
        #expect(!CrossSitePolicy.changesState(.head))
        #expect(!CrossSitePolicy.changesState(.options))
        for method in [HTTPRequest.Method.post, .put, .patch, .delete, HTTPRequest.Method("PROPPATCH")!] { #expect(CrossSitePolicy.changesState(method)) }
    }

    @Test("a cross-site POST to an auth: required route is refused before any session lookup; csrf: off and auth: none routes pass it on")
    func routes() throws {
        var configuration = GatehouseConfiguration()
        configuration.upstreams = ["app": try #require(UpstreamTarget("http://127.0.0.1:3000"))]
        configuration.routes = [
            RouteConfiguration(prefix: "/api/", upstream: "app", auth: .required, csrf: false),
            RouteConfiguration(prefix: "/public/", upstream: "app", auth: .none),
            RouteConfiguration(prefix: "/", upstream: "app", auth: .required),
        ]
        let policy = GatewayPolicy(configuration: configuration)
        let facts = ConnectionFacts(peer: "192.0.2.1", trustedProxies: [])
        func step(_ method: HTTPRequest.Method, _ path: String, origin: String) -> GatewayStep {
            let fields = Self.fields(origin: origin)
            let request = HTTPRequest(method: method, scheme: nil, authority: "app.example.com", path: path, headerFields: fields)
            return policy.examine(request, client: ForwardingContext(connection: facts, headers: fields, authority: "app.example.com"))
        }
        func refused(_ step: GatewayStep) -> Bool {
            if case .decided(.forbidden(let error)) = step { return error == .crossSite }
            return false
        }
        #expect(refused(step(.post, "/account/delete", origin: "https://evil.example")))
        #expect(refused(step(.delete, "/account", origin: "https://evil.example")))
        #expect(!refused(step(.post, "/account/delete", origin: "https://app.example.com")))
        #expect(!refused(step(.get, "/account", origin: "https://evil.example")))
        #expect(!refused(step(.post, "/api/hook", origin: "https://evil.example")))
        #expect(!refused(step(.post, "/public/form", origin: "https://evil.example")))
    }
}
