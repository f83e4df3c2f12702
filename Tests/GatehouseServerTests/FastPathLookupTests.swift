import Foundation
import GRDB
import GatehouseCore
import GatehouseTestSupport
import Testing

@testable import GatehouseStore

/// SPEC §3: the event loop answers what it can look up, and a lookup it cannot answer from
/// memory costs one Redis read, whatever Redis holds: never a decline followed by a second
/// lookup on the router.
@Suite("Fast path session lookups", .serialized)
struct FastPathLookupTests {
    /// Redis's entry for a session as Gatehouse writes it (authenticated with the instances'
    /// key), last seen `lastSeen` ms since 1970.
    static func entry(_ instances: TwoInstances, userId: String, email: String, sessionId: String, tokenHash: String, lastSeen: Int64) throws -> String {
        let seen = Date(timeIntervalSince1970: Double(lastSeen) / 1000)
        let user = User(id: userId, email: email, createdAt: seen)
        let session = Session(
            id: sessionId, tokenHash: TokenHash(hex: tokenHash), userId: userId, createdAt: seen, expiresAt: seen.addingTimeInterval(86_400),
            lastSeenAt: seen, ip: "127.0.0.1", userAgent: "test"
        )
        return try instances.entries().encode(user, session)
    }

    @Test(
        "a session not in the in-process cache costs exactly one Redis GET: live entry, entry due for last_seen_at, tombstone, absent, unknown"
    )
    func oneReadPerLookup() async throws {
        let instances = try await TwoInstances.start(redisTimeout: "2s")
        defer { instances.terminate() }
        let email = "lookups@example.com"
        let userId = try await instances.signupUser(email)
        let queue = try DatabaseQueue(path: instances.directory.file("gatehouse.sqlite"))
        func sessionRow(_ token: String) throws -> (id: String, hash: String) {
            let hash = try #require(SessionToken(cookieValue: token)).hash.hex
            let id = try queue.read { db in try String.fetchOne(db, sql: "SELECT id FROM sessions WHERE token_hash = ?", arguments: [hash]) }
            return (try #require(id), hash)
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let tokens = try instances.insertSessions(4, userId: userId)
        // Live, cached as Gatehouse caches it.
        let live = try sessionRow(tokens[0])
        try await instances.redis.cli("SET", "gatehouse:session:" + live.hash, try Self.entry(instances, userId: userId, email: email, sessionId: live.id, tokenHash: live.hash, lastSeen: now), "PX", "600000")
        // Cached, but last seen two minutes ago: its last_seen_at write is due.
        let due = try sessionRow(tokens[1])
        try await instances.redis.cli(
            "SET", "gatehouse:session:" + due.hash, try Self.entry(instances, userId: userId, email: email, sessionId: due.id, tokenHash: due.hash, lastSeen: now - 120_000), "PX", "600000"
        )
        // Revoked: a tombstone.
        #expect(try await instances.a.logout(cookie: tokens[2]).status == 200)
        #expect(try await instances.redis.cli("GET", "gatehouse:session:" + (try sessionRowHash(tokens[2]))) == "revoked")
        // tokens[3]: in SQLite only (Redis has nothing). And a token nobody issued.
        let cases: [(name: String, token: String, status: Int)] = [
            ("live entry", tokens[0], 200), ("write due", tokens[1], 200), ("tombstone", tokens[2], 401), ("absent", tokens[3], 200),
            ("unknown", SessionToken.generate().cookieValue, 401),
        ]
        let connection = try KeepAliveConnection(address: instances.second.address)
        for (name, token, status) in cases {
            let (gets, evals) = (try await instances.redisGets(), try await instances.redisCalls("eval"))
            #expect(try await connection.status("GET", "/auth/verify", cookie: token) == status, "\(name)")
            // The due write refreshes the entry with a script that reads it (its GET is a
            // write's, not the lookup's): wait for it, then count the lookup's reads alone.
            if name == "write due" { #expect(try await eventually { try await instances.redisCalls("eval") - evals == 1 }) }
            let refreshes = try await instances.redisCalls("eval") - evals
            let reads = try await instances.redisGets() - gets - refreshes
            #expect(reads == 1, "\(name): \(reads) Redis reads for one lookup")
        }
        // The due write happened on that one read's answer.
        // (committed with the writes due beside it, a moment later)
        #expect(
            try await eventually {
                let lastSeen = try await queue.read { db in try Int64.fetchOne(db, sql: "SELECT last_seen_at FROM sessions WHERE id = ?", arguments: [due.id]) }
                return (lastSeen ?? 0) > now - 60_000
            }
        )
        // And the event loop answered every one of them (the router was never asked).
        let verifyLines = try String(contentsOfFile: instances.directory.file("second.log"), encoding: .utf8)
            .split(whereSeparator: \.isNewline).filter { $0.contains("path=/auth/verify ") }
        #expect(verifyLines.count >= cases.count)
        #expect(verifyLines.allSatisfy { $0.contains("served=fast_path") }, "a verify reached the router")
    }

    private func sessionRowHash(_ token: String) throws -> String {
        try #require(SessionToken(cookieValue: token)).hash.hex
    }

    @Test("a request's many session cookies cost at most 4 lookups: verify reads Redis at most 4 times, logout revokes only the first 4")
    func manyCookies() async throws {
        let instances = try await TwoInstances.start(redisTimeout: "2s")
        defer { instances.terminate() }
        let userId = try await instances.signupUser("cookies@example.com")
        let live = try instances.insertSessions(10, userId: userId)
        let connection = try KeepAliveConnection(address: instances.second.address)
        // 996 tokens nobody issued, then a live one: only the first few are looked at.
        let unknown = (0..<996).map { _ in SessionToken.generate().cookieValue }
        let header = (unknown + [live[0]]).joined(separator: "; gatehouse_session=")
        let gets = try await instances.redisGets()
        #expect(try await connection.status("GET", "/auth/verify", cookie: header) == 401)
        #expect(try await instances.redisGets() - gets <= CookieHeader.sessionCookiesConsidered)
        // The control: the live cookie alone passes.
        #expect(try await connection.status("GET", "/auth/verify", cookie: live[0]) == 200)
        // Logout with all ten live cookies revokes the first four; the rest stay live.
        #expect(try await instances.a.logout(cookie: live.joined(separator: "; gatehouse_session=")).status == 200)
        for (index, token) in live.enumerated() {
            let expected = index < CookieHeader.sessionCookiesConsidered ? 401 : 200
            #expect(try await instances.b.get("/auth/me", cookie: token).status == expected, "cookie \(index)")
        }
    }

    @Test("each event loop holds redis.local_cache_size sessions: a rotation over that many, on one connection, is answered from memory")
    func capacityPerLoop() async throws {
        let instances = try await TwoInstances.start(extra: "  local_cache_size: 64\n", redisTimeout: "2s")
        defer { instances.terminate() }
        let userId = try await instances.signupUser("capacity@example.com")
        let tokens = try instances.insertSessions(64, userId: userId)
        let connection = try KeepAliveConnection(address: instances.second.address)
        // A pass that reads nothing from Redis: all 64 are in this connection's loop's cache.
        #expect(try await instances.warm(tokens, on: connection, passes: 12))
    }
}
