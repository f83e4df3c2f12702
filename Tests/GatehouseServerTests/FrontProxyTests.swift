import Foundation
import GatehouseCore
import GatehouseTestSupport
import HTTPTypes
import Testing

/// The shipped nginx site and Caddyfile, run for real in front of Gatehouse and an upstream.
@Suite("Deployment recipes: real nginx (auth_request) and Caddy (forward_auth)", .serialized)
struct FrontProxyTests {
    enum Kind: String, CaseIterable, CustomStringConvertible {
        case nginx, caddy
        var description: String { rawValue }
    }

    static let password = "front proxy password"

    /// Runs `body` with `kind` started from its shipped recipe in front of a live Gatehouse
    /// (which trusts it) and the echo upstream. `body` gets the proxy as a client reaches it
    /// and the `Host` a client sends it.
    static func withRecipe(_ kind: Kind, _ body: @escaping @Sendable (_ front: SocketTarget, _ host: String) async throws -> Void) async throws {
        try await EchoUpstream.with { appPort in
            try await TestGatehouse.run(.live, configure: {
                $0.trustedProxies = [CIDR("127.0.0.1")!]
                $0.allowedRedirectHosts = ["127.0.0.1:*"]
            }) { api, _ in
                let gatehousePort = try #require((api as? SocketTarget)?.port)
                let proxy = kind == .nginx
                    ? try await FrontProxy.nginx(gatehousePort: gatehousePort, appPort: appPort)
                    : try await FrontProxy.caddy(gatehousePort: gatehousePort, appPort: appPort)
                defer { proxy.stop() }
                try await body(SocketTarget(host: "127.0.0.1", port: proxy.port), "127.0.0.1:\(proxy.port)")
            }
        }
    }

    @Test("logged in: the upstream sees the right X-User-Id; logged out: 302 to login for HTML, 401 for API; spoofed identity never gets through", arguments: Kind.allCases)
    func recipe(kind: Kind) async throws {
        try await Self.withRecipe(kind) { front, host in
            // Signup goes through the proxy to Gatehouse.
            let signup = try await front.signup("front@example.com", Self.password)
            #expect(signup.status == 201)
            let token = try #require(signup.sessionToken())
            let userId = try #require(signup.json["id"] as? String)

            // Logged in: identity from Gatehouse, whatever the client claims.
            let spoofs = ["X-User-Id": "admin", "X-User-Email": "root@example.com", "X_User_Id": "admin2", "x-user-id": "admin3"]
            let page = try await front.request(.get, "/app/page?x=1", cookie: token, headers: spoofs.merging(["Host": host]) { $1 })
            #expect(page.status == 200)
            let upstream = try #require(EchoedRequest(page))
            #expect(upstream.target == "/app/page?x=1")
            #expect(upstream.values("X-User-Id") == [userId])
            #expect(upstream.values("X-User-Email") == ["front@example.com"])
            #expect(upstream.values("X_User_Id").isEmpty)

            // Logged out: browsers to the login page, back here afterwards; APIs get 401.
            let browser = try await front.request(.get, "/app/page?x=1", headers: ["Accept": "text/html", "Host": host])
            #expect(browser.status == 302)
            let location = try #require(browser.headers[HTTPField.Name("Location")!])
            #expect(location.hasPrefix("/auth/login?rd="))
            #expect(location.removingPercentEncoding?.contains("/app/page?x=1") == true)
            if kind == .nginx {
                // The subrequest carries the site's Host, so Gatehouse knows the original URL
                // for one of its own and sends back a relative rd (no allowed_redirect_hosts needed).
                #expect(location.removingPercentEncoding == "/auth/login?rd=/app/page?x=1")
            }
            let apiCall = try await front.request(.get, "/app/page", headers: ["Accept": "application/json", "X-User-Id": "admin"])
            #expect(apiCall.status == 401)
            #expect(EchoedRequest(apiCall) == nil)

            // Public pages: no session needed, and no client-sent identity passes.
            let publicPage = try await front.request(.get, "/public/info", headers: spoofs)
            #expect(publicPage.status == 200)
            let publicSeen = try #require(EchoedRequest(publicPage))
            #expect(publicSeen.values("X-User-Id").allSatisfy { $0.isEmpty })
            #expect(publicSeen.values("X-User-Email").allSatisfy { $0.isEmpty })
            #expect(publicSeen.values("X_User_Id").isEmpty)

            // Logout through the proxy revokes the session at once.
            #expect(try await front.logout(cookie: token).status == 200)
            #expect(try await front.request(.get, "/app/page", cookie: token).status == 401)
        }
    }

    @Test("the app sees the Host the client asked for, the client's address in X-Forwarded-For, and X-Forwarded-Proto and -Host, whatever the client claims", arguments: Kind.allCases)
    func forwardingHeaders(kind: Kind) async throws {
        try await Self.withRecipe(kind) { front, host in
            let token = try #require(try await front.signup("forwarding@example.com", Self.password).sessionToken())
            let claims = ["Host": host, "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "elsewhere.example"]
            for path in ["/app/page", "/public/page"] {
                let seen = try #require(EchoedRequest(try await front.request(.get, path, cookie: token, headers: claims)))
                #expect(seen.values("Host") == [host], "\(path)")
                #expect(seen.values("X-Forwarded-For") == ["127.0.0.1"], "\(path)")
                #expect(seen.values("X-Forwarded-Proto") == ["http"], "\(path)")
                #expect(seen.values("X-Forwarded-Host") == [host], "\(path)")
            }
        }
    }

    @Test("the app gets the client's other cookies and never Gatehouse's session cookie, on protected and public pages", arguments: Kind.allCases)
    func sessionCookieStripped(kind: Kind) async throws {
        try await Self.withRecipe(kind) { front, host in
            let signup = try await front.signup("cookies@example.com", Self.password)
            let token = try #require(signup.sessionToken())
            let userId = try #require(signup.json["id"] as? String)

            // `theme=dark; gatehouse_session=…; lang=en`: the session cookie between the app's.
            for path in ["/app/page", "/public/page"] {
                let seen = try #require(EchoedRequest(try await front.request(.get, path, cookie: token, headers: ["Host": host])))
                #expect(seen.values("Cookie") == ["theme=dark; lang=en"], "\(path)")
                #expect(!seen.headers.contains { $0.1.contains(token) }, "\(path)")
            }
            // The session cookie alone: the app gets no Cookie header, and the identity still.
            let alone = try #require(EchoedRequest(try await front.get("/app/page", cookie: token)))
            #expect(alone.values("Cookie").isEmpty)
            #expect(alone.values("X-User-Id") == [userId])

            // Every place and spelling Gatehouse would read as its session cookie; names that
            // only contain it are the app's.
            let shapes = [
                ("gatehouse_session=\(token); lang=en", "lang=en"),
                ("theme=dark;gatehouse_session=\(token)", "theme=dark"),
                ("theme=dark; \tgatehouse_session = \(token) ; lang=en", "theme=dark; lang=en"),
                ("xgatehouse_session=1; gatehouse_session_old=2", "xgatehouse_session=1; gatehouse_session_old=2"),
                // The name with cookie.secure on (production): __Host-gatehouse_session.
                ("__Host-gatehouse_session=\(token); lang=en", "lang=en"),
                ("theme=dark; __Host-gatehouse_session=\(token)", "theme=dark"),
                ("x__Host-gatehouse_session=1", "x__Host-gatehouse_session=1"),
            ]
            for (cookie, kept) in shapes {
                let seen = try #require(EchoedRequest(try await front.request(.get, "/public/page", headers: ["Cookie": cookie, "Host": host])))
                #expect(seen.values("Cookie") == [kept], "\(cookie)")
            }
            // Two session cookies (set for two paths or domains): neither reaches the app.
            let twice = try await front.request(.get, "/public/page", headers: ["Cookie": "gatehouse_session=first; theme=dark; gatehouse_session=second", "Host": host])
            let twiceSeen = try #require(EchoedRequest(twice))
            #expect(!twiceSeen.values("Cookie").contains { $0.contains("first") || $0.contains("second") })
        }
    }

    @Test("a cross-site POST to a protected page through the recipe gets 403 and never reaches the app; the same POST from the site does", arguments: Kind.allCases)
    func crossSite(kind: Kind) async throws {
        try await Self.withRecipe(kind) { front, host in
            let token = try #require(try await front.signup("csrf-front@example.com", Self.password).sessionToken())
            for headers in [["Origin": "https://evil.example"], ["Sec-Fetch-Site": "cross-site"]] {
                let forged = try await front.request(.post, "/app/form", cookie: token, headers: headers.merging(["Host": host, "Content-Type": "application/x-www-form-urlencoded"]) { $1 }, body: "delete=all")
                #expect(forged.status == 403, "\(headers)")
                #expect(EchoedRequest(forged) == nil, "\(headers) reached the app")
                let logout = try await front.request(.post, "/auth/logout", cookie: token, headers: headers.merging(["Host": host]) { $1 })
                #expect(logout.status == 403)
            }
            #expect(try await front.get("/auth/me", cookie: token).status == 200)
            let own = try await front.request(.post, "/app/form", cookie: token, headers: ["Host": host, "Origin": "http://\(host)", "Content-Type": "application/x-www-form-urlencoded"], body: "delete=all")
            #expect(own.status == 200)
            #expect(EchoedRequest(own)?.method == "POST")
        }
    }

    @Test("the pages through the recipe: the login page, its form (with the browser's Origin) and the 303 back to the page", arguments: Kind.allCases)
    func pages(kind: Kind) async throws {
        try await Self.withRecipe(kind) { front, host in
            _ = try await front.signup("pages-front@example.com", Self.password)
            let redirect = try await front.request(.get, "/app/page?x=1", headers: ["Accept": "text/html", "Host": host])
            let login = try #require(redirect.headers[.location])
            let form = try await PageForm.open(front, login, headers: ["Host": host])
            let answer = try await form.post(
                front, login, [("email", "pages-front@example.com"), ("password", Self.password)], headers: ["Host": host, "Origin": "http://\(host)"]
            )
            #expect(answer.status == 303)
            // Caddy's forward_auth names the original URL in full: on the site's own host.
            #expect(["/app/page?x=1", "http://\(host)/app/page?x=1"].contains(answer.headers[.location] ?? ""), "\(answer.headers)")
            let forged = try await form.post(
                front, login, [("email", "pages-front@example.com"), ("password", Self.password)], headers: ["Host": host, "Origin": "https://evil.example"]
            )
            #expect(forged.status == 403)
            let page = try await front.request(.get, "/app/page?x=1", cookie: try #require(answer.sessionToken()), headers: ["Host": host])
            #expect(EchoedRequest(page)?.target == "/app/page?x=1")
        }
    }

    @Test("the app is reached over kept-alive HTTP/1.1 connections", arguments: Kind.allCases)
    func keptAlive(kind: Kind) async throws {
        try await Self.withRecipe(kind) { front, host in
            let token = try #require(try await front.signup("keepalive@example.com", Self.password).sessionToken())
            var peers: [String] = []
            // Each request on a new client connection, one after the other.
            for path in ["/app/1", "/public/2", "/app/3", "/public/4"] {
                let seen = try #require(EchoedRequest(try await front.request(.get, path, cookie: token, headers: ["Host": host])))
                // HTTP/1.0 keeps a connection only with `Connection: keep-alive`, HTTP/1.1 with no Connection header.
                #expect(seen.values("Connection").isEmpty, "\(path)")
                peers.append(seen.peer)
            }
            #expect(Set(peers).count < peers.count, "upstream connections: \(peers)")
        }
    }
}
