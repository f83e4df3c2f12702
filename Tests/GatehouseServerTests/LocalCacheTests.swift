import Foundation
import GRDB
import GatehouseCore
import GatehouseTestSupport
import NIOConcurrencyHelpers
import Testing

extension TwoInstances {
    /// Sessions of one user written straight into the shared SQLite file, as logins would
    /// write them (hashes only), without paying for thousands of Argon2 logins.
    func insertSessions(_ count: Int, userId: String, lastSeenAgo: Duration = .zero) throws -> [String] {
        let queue = try DatabaseQueue(path: directory.file("gatehouse.sqlite"))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var tokens: [String] = []
        try queue.write { db in
            for _ in 0..<count {
                let token = SessionToken.generate()
                try db.execute(
                    sql: "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, '127.0.0.1', 'test')",
                    arguments: [UUID().uuidString.lowercased(), token.hash.hex, userId, now, now + 86_400_000, now - lastSeenAgo.milliseconds]
                )
                tokens.append(token.cookieValue)
            }
        }
        return tokens
    }

    /// Signs a user up on A and returns its id (the sessions are then inserted directly).
    func signupUser(_ email: String) async throws -> String {
        try #require(try await a.signup(email, "local cache password").json["id"] as? String)
    }

    /// GET commands Redis has executed so far (every Redis read of a session is one).
    func redisGets() async throws -> Int { try await redisCalls("get") }

    /// Calls of `command` (lowercase) Redis has executed so far, scripts' calls included.
    func redisCalls(_ command: String) async throws -> Int {
        Self.calls(command, in: try await redis.cli("INFO", "commandstats"))
    }

    /// ``redisGets()`` on the calling thread, which it blocks: only from a thread of its own.
    func redisGetsNow() throws -> Int { try Self.calls("get", in: try redis.cliNow("INFO", "commandstats")) }

    private static func calls(_ command: String, in stats: String) -> Int {
        // INFO lines end in CRLF, which Swift treats as one Character: split on any newline.
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last
        else { return 0 }
        return Int(calls) ?? 0
    }

    /// Verifies every token on `connection` until one whole pass reads nothing from Redis:
    /// then each is in the in-process cache of that connection's event loop.
    func warm(_ tokens: [String], on connection: KeepAliveConnection, passes: Int = 6) async throws -> Bool {
        try await onThread { try warmNow(tokens, on: connection, passes: passes) }
    }

    /// ``warm(_:on:passes:)`` on the calling thread (which it blocks).
    func warmNow(_ tokens: [String], on connection: KeepAliveConnection, passes: Int = 6) throws -> Bool {
        for _ in 0..<passes {
            let before = try redisGetsNow()
            for token in tokens {
                guard try connection.send("GET", "/auth/verify", cookie: token).status == 200 else { return false }
            }
            // The first pass always reads Redis, so a flat pass is a pass of hits.
            if try redisGetsNow() == before { return true }
        }
        return false
    }
}

@Suite("In-process session cache and the fast path (SPEC §3, I3)", .serialized)
struct LocalCacheTests {

    @Test("logout on instance A, then a verify on instance B right after it returned, of a session B answers from memory, is refused: 1,000 sessions, with concurrent load on B")
    func revocationUnderLoad() async throws {
        let instances = try await TwoInstances.start(environment: ["GATEHOUSE_LOG_LEVEL": "notice"])
        defer { instances.terminate() }
        let userId = try await instances.signupUser("many@example.com")
        let background = try instances.insertSessions(40, userId: userId)
        let (a, b) = (instances.first.address, instances.second.address)

        // Concurrent load: verifies of other live sessions on B from two more connections
        // (spread over B's event loops), all of which must keep answering 200.
        let stop = NIOLockedValueBox(false)
        let loadResults = NIOLockedValueBox((ok: 0, other: 0))
        let load = (0..<2).map { index in
            Task {
                try await onThread {
                    let connection = try KeepAliveConnection(address: b)
                    var position = index
                    while !stop.withLockedValue({ $0 }) {
                        let status = try connection.send("GET", "/auth/verify", cookie: background[position % background.count]).status
                        loadResults.withLockedValue { status == 200 ? ($0.ok += 1) : ($0.other += 1) }
                        position += 2
                    }
                }
            }
        }
        defer {
            if !stop.withLockedValue({ $0 }) {
                print("A:", instances.first.log.suffix(2000), "\nB:", instances.second.log.suffix(2000), "\nalive:", instances.first.isRunning, instances.second.isRunning)
            }
            stop.withLockedValue { $0 = true }
        }

        let outcome = try await onThread { () -> (unwarmed: Int, loggedOut: Int, accepted: Int, loadDuring: Int, slowest: Duration) in
            let verifier = try KeepAliveConnection(address: b)
            var (unwarmed, loggedOut, accepted, slowest, slowestLogout) = (0, 0, 0, Duration.zero, Duration.zero)
            let clock = ContinuousClock()
            let loadBefore = loadResults.withLockedValue { $0.ok }
            // In rounds of 500 fresh sessions, so that each is checked well within the minute
            // after which its last_seen_at write is due (and the stores are asked anyway).
            for _ in 0..<2 {
                let tokens = try instances.insertSessions(500, userId: userId)
                // Every session of the round is now answered from B's memory on this connection's loop.
                // (Passes to spare: on a loaded machine back-fills and their invalidations lag.)
                guard try instances.warmNow(tokens, on: verifier, passes: 12) else {
                    unwarmed += 1
                    continue
                }
                // Opened now, not before the warming: a connection that sends nothing for
                // client.header_timeout is closed, and warming on a loaded machine can take that long.
                let revoker = try KeepAliveConnection(address: a)
                for token in tokens {
                    let logoutStart = clock.now
                    if try revoker.send("POST", "/auth/logout", cookie: token).status == 200 { loggedOut += 1 }
                    slowestLogout = max(slowestLogout, clock.now - logoutStart)
                    let start = clock.now
                    if try verifier.send("GET", "/auth/verify", cookie: token).status != 401 { accepted += 1 }
                    slowest = max(slowest, clock.now - start)
                }
            }
            let loadDuring = loadResults.withLockedValue { $0.ok } - loadBefore
            print("revocation loop: slowest logout (an fsync'd SQLite write) \(slowestLogout)")
            return (unwarmed, loggedOut, accepted, loadDuring, slowest)
        }
        stop.withLockedValue { $0 = true }
        for task in load { try await task.value }

        #expect(outcome.unwarmed == 0, "sessions never came to be answered from memory")
        #expect(outcome.loggedOut == 1_000)
        #expect(outcome.accepted == 0, "revoked sessions accepted by B after logout on A returned")
        let results = loadResults.withLockedValue { $0 }
        // The load ran while sessions were revoked, and was never refused.
        #expect(outcome.loadDuring > 0 && results.other == 0, "concurrent load: \(results)")
        print("revocation loop: slowest verify after logout \(outcome.slowest), \(results.ok) concurrent verifies")
    }

    @Test("invalidation link cut with CLIENT KILL: the in-process cache is off until the link is back, and a session revoked meanwhile is never accepted")
    func invalidationLinkCut() async throws {
        let instances = try await TwoInstances.start()
        defer { instances.terminate() }
        let userId = try await instances.signupUser("cut@example.com")
        let tokens = try instances.insertSessions(2, userId: userId)
        let (revoked, live) = (tokens[0], tokens[1])
        let verifier = try KeepAliveConnection(address: instances.second.address)
        #expect(try await instances.warm(tokens, on: verifier))

        // The link cannot come back while SUBSCRIBE is refused.
        try await instances.redis.cli("ACL", "SETUSER", "default", "-subscribe")
        #expect(Int(try await instances.redis.cli("CLIENT", "KILL", "TYPE", "pubsub")) ?? 0 >= 2)
        // Revoked on A: the tombstone's invalidation has nowhere to go on B.
        #expect(try await instances.a.logout(cookie: revoked).status == 200)
        #expect(try await verifier.status("GET", "/auth/verify", cookie: revoked) == 401)

        // Off, not failing: live sessions are answered from the stores meanwhile.
        for _ in 0..<20 {
            #expect(try await verifier.status("GET", "/auth/verify", cookie: live) == 200)
        }
        #expect(try await verifier.status("GET", "/auth/verify", cookie: revoked) == 401)

        // Back on once SUBSCRIBE works again; the revoked session stays refused.
        try await instances.redis.cli("ACL", "SETUSER", "default", "+subscribe")
        #expect(try await eventually { try await instances.warm([live], on: verifier, passes: 2) })
        #expect(try await verifier.status("GET", "/auth/verify", cookie: revoked) == 401)
    }

    @Test("Redis killed: verify is answered from SQLite, and a logout on the other instance is refused at once, 500 times")
    func redisDown() async throws {
        let instances = try await TwoInstances.start()
        defer { instances.terminate() }
        let userId = try await instances.signupUser("down@example.com")
        let tokens = try instances.insertSessions(500, userId: userId)
        let verifier = try KeepAliveConnection(address: instances.second.address)
        #expect(try await instances.warm(tokens, on: verifier))
        instances.redis.kill()
        let outcome = try await onThread { () -> (live: Int, refused: Int) in
            let revoker = try KeepAliveConnection(address: instances.first.address)
            var (live, refused) = (0, 0)
            for token in tokens {
                if try verifier.send("GET", "/auth/verify", cookie: token).status == 200 { live += 1 }
                _ = try revoker.send("POST", "/auth/logout", cookie: token)
                if try verifier.send("GET", "/auth/verify", cookie: token).status == 401 { refused += 1 }
            }
            return (live, refused)
        }
        #expect(outcome.live == 500 && outcome.refused == 500, "\(outcome)")
    }

    @Test("a session due for its last_seen_at write is not answered from memory: the stores answer and write it")
    func lastSeenStillWritten() async throws {
        let instances = try await TwoInstances.start()
        defer { instances.terminate() }
        let userId = try await instances.signupUser("seen@example.com")
        let token = try instances.insertSessions(1, userId: userId, lastSeenAgo: .seconds(120))[0]
        let connection = try KeepAliveConnection(address: instances.second.address)
        let queue = try DatabaseQueue(path: instances.directory.file("gatehouse.sqlite"))
        let hash = try #require(SessionToken(cookieValue: token)).hash.hex
        let lastSeen = { try queue.read { db in try Int64.fetchOne(db, sql: "SELECT last_seen_at FROM sessions WHERE token_hash = ?", arguments: [hash]) } ?? 0 }
        let before = try lastSeen()
        // Cached in Redis as it is in SQLite (as an entry looks a minute after its last write),
        // so that the fast path's own Redis read is what finds it.
        let sessionId = try await queue.read { db in try String.fetchOne(db, sql: "SELECT id FROM sessions WHERE token_hash = ?", arguments: [hash]) } ?? ""
        let entry = try FastPathLookupTests.entry(instances, userId: userId, email: "seen@example.com", sessionId: sessionId, tokenHash: hash, lastSeen: before)
        try await instances.redis.cli("SET", "gatehouse:session:" + hash, entry, "PX", "600000")
        for _ in 0..<4 {
            #expect(try await connection.status("GET", "/auth/verify", cookie: token) == 200)
        }
        // Committed with the writes due beside it, a moment later (the request does not wait).
        #expect(try await eventually { try lastSeen() > before + 100_000 })
        // And once written, the refreshed entry is answered from memory.
        #expect(try await eventually { try await instances.warm([token], on: connection, passes: 2) })
    }

    @Test("pipelined requests are answered in order when fast-path and Hummingbird answers mix")
    func pipelinedOrder() async throws {
        let instances = try await TwoInstances.start()
        defer { instances.terminate() }
        let userId = try await instances.signupUser("order@example.com")
        let token = try instances.insertSessions(1, userId: userId)[0]
        let connection = try KeepAliveConnection(address: instances.second.address)
        #expect(try await instances.warm([token], on: connection))
        let verify = "GET /auth/verify HTTP/1.1\r\nHost: x\r\nCookie: gatehouse_session=\(token)\r\n\r\n"
        let anonymous = "GET /auth/verify HTTP/1.1\r\nHost: x\r\n\r\n"
        let responses = try await onThread {
            try connection.write(verify + anonymous + verify + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + verify)
            return try (0..<5).map { _ in try connection.readResponse() }
        }
        #expect(responses.map(\.status) == [200, 401, 200, 200, 200])
        for index in [0, 2, 4] {
            let head = responses[index].head.lowercased()
            #expect(head.contains("x-user-id: \(userId)") && head.contains("cache-control: no-store") && head.contains("content-length: 0") && head.contains("date: "))
        }
        #expect(responses[3].head.lowercased().contains("content-type: application/json"))
    }
}
