import Foundation
import GatehouseCore
import Testing

@testable import GatehouseStore

@Suite("Argon2id hashing")
struct Argon2HasherTests {
    static let cheap = Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)

    /// Starts `count` hashes at once; whether each was admitted and done.
    static func hashAtOnce(_ count: Int, on hasher: Argon2Hasher) async -> [Bool] {
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask { (try? await hasher.hash("password1")) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
    }

    @Test("hashes are Argon2id PHC strings that verify the right password only")
    func roundTrip() async throws {
        let hasher = try Argon2Hasher(parameters: Self.cheap, workers: 1)
        let hash = try await hasher.hash("correct horse")
        #expect(hash.hasPrefix("$argon2id$v=19$m=1024,t=1,p=1$"))
        #expect(try await hasher.verify("correct horse", against: hash))
        #expect(try await hasher.verify("correct horsf", against: hash) == false)
        #expect(try await hasher.hash("correct horse") != hash)
        #expect(try await hasher.verify("x", against: "not a hash") == false)
        #expect(try await hasher.verify("x", against: "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA") == false)
        try await hasher.shutdown()
    }

    @Test("the same password in composed and decomposed Unicode verifies (NFKC)")
    func unicodeNormalisation() async throws {
        let hasher = try Argon2Hasher(parameters: Self.cheap, workers: 1)
        let hash = try await hasher.hash("p\u{E4}ssw\u{F6}rd")
        #expect(try await hasher.verify("pa\u{308}sswo\u{308}rd", against: hash))
        #expect(try await hasher.verify("passwords", against: hash) == false)
        try await hasher.shutdown()
    }

    @Test("hashes made with other parameters need a rehash")
    func rehash() async throws {
        let old = try Argon2Hasher(parameters: Self.cheap, workers: 1)
        let current = try Argon2Hasher(parameters: Argon2Parameters(memoryKiB: 2048, iterations: 1, parallelism: 1), workers: 1)
        let oldHash = try await old.hash("password1")
        #expect(current.needsRehash(oldHash))
        #expect(current.needsRehash("garbage"))
        #expect(!current.needsRehash(current.dummyHash))
        #expect(try await current.verify("password1", against: oldHash))
        try await old.shutdown()
        try await current.shutdown()
    }

    @Test("the dummy hash follows the parameters most stored hashes have; the configured ones on a tie or with none stored")
    func dummyFollowsStoredHashes() async throws {
        let older = Argon2Parameters(memoryKiB: 2048, iterations: 1, parallelism: 1)
        let other = Argon2Parameters(memoryKiB: 1024, iterations: 2, parallelism: 1)
        let hasher = try Argon2Hasher(parameters: Self.cheap, workers: 1)
        #expect(Argon2Hasher.parameters(of: hasher.dummyHash) == Self.cheap)
        #expect(try await hasher.follow(stored: [older: 3, Self.cheap: 1]))
        #expect(hasher.dummyParameters == older)
        #expect(Argon2Hasher.parameters(of: hasher.dummyHash) == older)
        // Unchanged parameters make no new hash.
        let followed = hasher.dummyHash
        #expect(try await hasher.follow(stored: [older: 3, Self.cheap: 2]) == false)
        #expect(hasher.dummyHash == followed)
        #expect(try await hasher.follow(stored: [older: 3, Self.cheap: 3]))
        #expect(Argon2Hasher.parameters(of: hasher.dummyHash) == Self.cheap)
        #expect(hasher.dummyParameters(for: [:]) == Self.cheap)
        // Between other tied parameters every instance picks the same: the costliest.
        #expect(hasher.dummyParameters(for: [other: 2, older: 2, Self.cheap: 1]) == older)
        #expect(hasher.dummyParameters(for: [older: 2, other: 2]) == older)
        // Parameters libargon2 refuses (or that do not fit its types) leave the dummy hash as it was.
        for unusable in [Argon2Parameters(memoryKiB: 0, iterations: 0, parallelism: 0), Argon2Parameters(memoryKiB: 1 << 40, iterations: 1, parallelism: 1)] {
            await #expect(throws: PasswordHasherError.self) { try await hasher.follow(stored: [unusable: 9]) }
            #expect(Argon2Hasher.parameters(of: hasher.dummyHash) == Self.cheap)
        }
        try await hasher.shutdown()
    }

    @Test("a full queue answers overloaded instead of waiting")
    func overloaded() async throws {
        let hasher = try Argon2Hasher(parameters: Argon2Parameters(memoryKiB: 65536, iterations: 3, parallelism: 1), workers: 1, queueLimit: 1)
        let outcomes = await Self.hashAtOnce(6, on: hasher)
        // One runs, one waits; the rest are refused at once.
        #expect(outcomes.filter { $0 }.count >= 1)
        #expect(outcomes.filter { !$0 }.count >= 3)
        #expect(hasher.inFlight == 0)
        try await hasher.shutdown()
    }

    @Test("a hash expected to wait longer than max_wait is refused at once, long before the queue is full")
    func admissionByWait() async throws {
        let hasher = try Argon2Hasher(parameters: Argon2Parameters(memoryKiB: 65536, iterations: 3, parallelism: 1), workers: 1, queueLimit: 1000, maxWait: .milliseconds(1))
        let outcomes = await Self.hashAtOnce(20, on: hasher)
        // One runs; one behind it would wait a whole hash, far past 1 ms: refused, though
        // 1,000 could queue.
        #expect(outcomes.filter { $0 }.count >= 1)
        #expect(outcomes.filter { !$0 }.count >= 10)
        #expect(hasher.inFlight == 0)
        try await hasher.shutdown()
    }

    @Test("the hashing threads run below the event loops' CPU priority (nice 10)")
    func lowPriority() async throws {
        let hasher = try Argon2Hasher(parameters: Self.cheap, workers: 2)
        let priorities = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<10 { group.addTask { try await hasher.workerPriority() } }
            return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
        }
        #expect(priorities == [Argon2Hasher.workerNiceness])
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) == 0)
        try await hasher.shutdown()
    }
}
