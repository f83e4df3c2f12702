internal import CArgon2
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import NIOPosix

/// Why a password could not be hashed or checked.
public enum PasswordHasherError: Error, Sendable, Equatable {
    /// Every worker is busy and the queue is full: answer 503 instead of piling up memory.
    case overloaded
    /// libargon2 returned an error code.
    case argon2(code: Int32)
}

/// Argon2id hashing and verification through libargon2, off the event loops on a bounded pool.
///
/// Hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
///
/// Admission (SPEC §3: a flood of logins must not starve logged-in users): an operation that
/// would wait longer than `maxWait` for a worker — the operations ahead of it times the mean
/// hash time, over the workers — or find `workers + queueLimit` admitted already, fails at
/// once with ``PasswordHasherError/overloaded`` instead of queueing. And the workers run at a
/// lower CPU priority than the event loops (nice ``workerNiceness``): when nothing else needs
/// the cores Argon2 gets all of them (login throughput), and when verify and proxy traffic
/// needs them it gets them first.
public final class Argon2Hasher: Sendable {
    /// Parameters for new hashes.
    public let parameters: Argon2Parameters
    /// Threads doing the hashing.
    public let workers: Int
    /// Operations allowed to wait for a worker.
    public let queueLimit: Int
    /// A hash of a random password, verified against when an email is unknown so that the
    /// response takes as long as for a wrong password: made with the parameters most stored
    /// hashes have (see ``follow(stored:)``), which after a change of the configured ones are
    /// still the older ones until most accounts have logged in again.
    public var dummyHash: String { dummy.withLockedValue { $0.hash } }
    /// The parameters ``dummyHash`` was made with.
    public var dummyParameters: Argon2Parameters { dummy.withLockedValue { $0.parameters } }

    private let dummy: NIOLockedValueBox<(parameters: Argon2Parameters, hash: String)>
    /// The longest an operation may be expected to wait for a worker.
    public let maxWait: Duration
    private let pool: NIOThreadPool
    private let admission: NIOLockedValueBox<Admission>

    private struct Admission {
        var admitted = 0
        /// Mean time of one operation on a worker, in nanoseconds (moving average).
        var meanNanoseconds: Double
    }

    /// The nice value of the hashing threads (Linux): below the event loops, which run at 0.
    public static let workerNiceness: Int32 = 10

    static let saltLength = 16
    static let hashLength = 32

    /// Starts `workers` threads (0 = one per core).
    public init(parameters: Argon2Parameters, workers: Int = 0, queueLimit: Int = 64, maxWait: Duration = .seconds(1), hashDurations: DurationHistogram? = nil) throws {
        self.hashDurations = hashDurations
        self.parameters = parameters
        self.workers = workers > 0 ? workers : System.coreCount
        self.queueLimit = queueLimit
        self.maxWait = maxWait
        let started = ContinuousClock.now
        self.dummy = NIOLockedValueBox((parameters, try Self.dummyHashNow(parameters)))
        let first = ContinuousClock.now - started
        self.admission = NIOLockedValueBox(Admission(meanNanoseconds: Double(first.milliseconds) * 1e6 + 1e6))
        self.pool = NIOThreadPool(numberOfThreads: self.workers)
        self.pool.start()
        Self.lowerPriority(of: pool, threads: self.workers)
    }

    /// Runs one job on each of the pool's threads that lowers its CPU priority: each job waits
    /// until all have started, so no thread runs two of them.
    private static func lowerPriority(of pool: NIOThreadPool, threads: Int) {
        #if os(Linux)
        let arrived = NIOLockedValueBox(0)
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<threads {
            pool.submit { _ in
                // On Linux the nice value is per thread; `who` 0 is the calling thread.
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, workerNiceness)
                let last = arrived.withLockedValue { count -> Bool in
                    count += 1
                    return count == threads
                }
                if last { for _ in 0..<threads { release.signal() } }
                release.wait()
            }
        }
        #endif
    }

    /// Stops the worker threads.
    public func shutdown() async throws {
        try await pool.shutdownGracefully()
    }

    /// Hashes a password with the configured parameters.
    public func hash(_ password: String) async throws -> String {
        let parameters = self.parameters
        return try await run { try Self.hashNow(password, parameters: parameters) }
    }

    /// Checks a password against a PHC string; `false` for a mismatch or an unreadable hash.
    public func verify(_ password: String, against encoded: String) async throws -> Bool {
        try await run { Self.verifyNow(password, against: encoded) }
    }

    /// Makes ``dummyHash`` follow the stored hashes (counted by their parameters): a new one is
    /// made, on the pool, when ``dummyParameters(for:)`` changes. Returns whether it changed.
    @discardableResult
    public func follow(stored: [Argon2Parameters: Int]) async throws -> Bool {
        let wanted = dummyParameters(for: stored)
        guard wanted != dummyParameters else { return false }
        let hash = try await run { try Self.dummyHashNow(wanted) }
        dummy.withLockedValue { $0 = (wanted, hash) }
        return true
    }

    /// The parameters an unknown email's verification costs, given how many stored hashes have
    /// each: those most of them have, so that it takes as long as most accounts' verification.
    /// The configured parameters when nothing is stored or on a tie with them; among other
    /// tied ones, the costliest (the same choice on every instance).
    public func dummyParameters(for stored: [Argon2Parameters: Int]) -> Argon2Parameters {
        let rank = { (entry: (key: Argon2Parameters, value: Int)) in
            (entry.value, entry.key.memoryKiB, entry.key.iterations, entry.key.parallelism)
        }
        guard let most = stored.max(by: { rank($0) < rank($1) }), most.value > stored[parameters, default: 0] else { return parameters }
        return most.key
    }

    /// The nice value of the worker that runs this (for tests: every worker's is lowered).
    func workerPriority() async throws -> Int32 {
        try await pool.runIfActive {
            #if os(Linux)
            return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            #else
            return Argon2Hasher.workerNiceness
            #endif
        }
    }

    /// Where each operation's time on a worker is recorded.
    let hashDurations: DurationHistogram?

    /// Operations admitted now (running or waiting).
    public var inFlight: Int { admission.withLockedValue { $0.admitted } }

    /// Whether an operation asked for now would be refused: what a handler checks before it
    /// reads a body or the store, so that a flood's refusals cost as little as possible.
    public var isSaturated: Bool {
        admission.withLockedValue { $0.admitted >= workers + queueLimit || Self.wait(of: $0, workers: workers) > maxWait }
    }

    /// How long an operation admitted now would wait for a worker, by the mean hash time.
    public var expectedWait: Duration { admission.withLockedValue { Self.wait(of: $0, workers: workers) } }

    private static func wait(of admission: Admission, workers: Int) -> Duration {
        let ahead = admission.admitted - workers + 1
        guard ahead > 0 else { return .zero }
        return .nanoseconds(Int64(Double(ahead) * admission.meanNanoseconds / Double(workers)))
    }

    /// Whether `encoded` was made with other parameters (or another algorithm) than the configured ones.
    public func needsRehash(_ encoded: String) -> Bool {
        Argon2Hasher.parameters(of: encoded) != parameters
    }

    /// Reads the cost parameters of an Argon2id PHC string; `nil` for anything else.
    public static func parameters(of encoded: String) -> Argon2Parameters? {
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0].isEmpty, fields[1] == "argon2id", fields[2] == "v=19" else { return nil }
        var values: [Substring: Int] = [:]
        for pair in fields[3].split(separator: ",") {
            let parts = pair.split(separator: "=")
            guard parts.count == 2, let value = Int(parts[1]) else { return nil }
            values[parts[0]] = value
        }
        guard let memory = values["m"], let iterations = values["t"], let parallelism = values["p"] else { return nil }
        return Argon2Parameters(memoryKiB: memory, iterations: iterations, parallelism: parallelism)
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let limit = workers + queueLimit
        let (workers, maxWait) = (self.workers, self.maxWait)
        let admittedNow = admission.withLockedValue { state -> Bool in
            guard state.admitted < limit, Self.wait(of: state, workers: workers) <= maxWait else { return false }
            state.admitted += 1
            return true
        }
        guard admittedNow else { throw PasswordHasherError.overloaded }
        defer { admission.withLockedValue { $0.admitted -= 1 } }
        let (admission, durations) = (self.admission, hashDurations)
        return try await pool.runIfActive {
            let started = ContinuousClock.now
            defer {
                let took = ContinuousClock.now - started
                durations?.record(took)
                let nanoseconds = Double(took.components.seconds) * 1e9 + Double(took.components.attoseconds) / 1e9
                admission.withLockedValue { $0.meanNanoseconds = 0.8 * $0.meanNanoseconds + 0.2 * nanoseconds }
            }
            return try body()
        }
    }

    /// The bytes hashed: the UTF-8 of the password's normalised form, the form whose length
    /// ``CredentialPolicy`` checks.
    static func normalized(_ password: String) -> [UInt8] {
        Array(CredentialPolicy.normalizedPassword(password).utf8)
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// A hash of a random password with `parameters`.
    static func dummyHashNow(_ parameters: Argon2Parameters) throws -> String {
        try hashNow(Base64URL.encode(randomBytes(24)), parameters: parameters)
    }

    static func hashNow(_ password: String, parameters: Argon2Parameters) throws -> String {
        let passwordBytes = normalized(password)
        let salt = randomBytes(saltLength)
        // Parameters read from a stored hash may be anything: out of range is libargon2's error, not a trap.
        guard let t = UInt32(exactly: parameters.iterations), let m = UInt32(exactly: parameters.memoryKiB), let p = UInt32(exactly: parameters.parallelism)
        else { throw PasswordHasherError.argon2(code: ARGON2_INCORRECT_PARAMETER.rawValue) }
        let length = argon2_encodedlen(t, m, p, UInt32(saltLength), UInt32(hashLength), Argon2_id)
        var encoded = [CChar](repeating: 0, count: length + 1)
        let code = passwordBytes.withUnsafeBytes { passwordBuffer in
            salt.withUnsafeBytes { saltBuffer in
                argon2id_hash_encoded(
                    t, m, p, passwordBuffer.baseAddress, passwordBuffer.count,
                    saltBuffer.baseAddress, saltBuffer.count, hashLength, &encoded, encoded.count
                )
            }
        }
        guard code == ARGON2_OK.rawValue else { throw PasswordHasherError.argon2(code: code) }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func verifyNow(_ password: String, against encoded: String) -> Bool {
        // Refuse anything that is not an Argon2id PHC string before handing it to C.
        guard parameters(of: encoded) != nil else { return false }
        let passwordBytes = normalized(password)
        let code = passwordBytes.withUnsafeBytes { buffer in
            argon2id_verify(encoded, buffer.baseAddress, buffer.count)
        }
        return code == ARGON2_OK.rawValue
    }
}
