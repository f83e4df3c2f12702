import NIOCore
import NIOHTTPTypes

/// HTTP/1 order on one connection for ``FastPathHandler``: responses must leave in the order
/// requests came, whether Hummingbird or the fast path answers them. A request is taken by the
/// fast path only when Hummingbird has finished every response it owes; while the fast path's
/// answer is pending, later input (parts, events, errors) is held and replayed once it is
/// written. A pure state machine: the handler does the channel calls it asks for.
struct HTTP1Ordering {
    /// Where the parts of the request being read go.
    enum State: Equatable {
        /// To Hummingbird.
        case hummingbird
        /// Nowhere: answered by the fast path.
        case answered
        /// Taken by the fast path, answer not complete: later input is held. `ended`: the
        /// request's own `.end` has arrived (it is not "later input", and not held).
        case pending(ended: Bool)
    }

    /// What arrived behind a pending answer, in order: parts, and the events and errors that
    /// must not overtake it (a half-close, a quiesce, a parse error).
    enum Held {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }

    private(set) var state = State.hummingbird
    private var held = CircularBuffer<Held>()
    /// Requests given to Hummingbird whose response has not ended yet.
    private var owedByHummingbird = 0
    /// Parts given to Hummingbird since the last read-complete it saw.
    private(set) var readsSinceComplete = false
    /// A read was asked for while reading was paused.
    var readWanted = false

    /// Whether a new request may be taken by the fast path (Hummingbird owes no response).
    var mayTake: Bool { owedByHummingbird == 0 }

    var isPending: Bool {
        if case .pending = state { true } else { false }
    }

    /// Whether the pending request's `.end` has arrived.
    var pendingEnded: Bool { state == .pending(ended: true) }

    /// Backpressure: no reading once something is held behind a pending answer, or while the
    /// client does not read its answers, so a pipelining client cannot grow the buffers beyond
    /// one read. Reading on while nothing is held keeps the socket registered for reads
    /// (pausing on every pending answer cost two `epoll_ctl` calls per request).
    func mayRead(writable: Bool) -> Bool {
        (!isPending || held.isEmpty) && writable
    }

    /// Input that arrives now: `nil` when held (or the pending request's own end), else the
    /// part to route.
    mutating func receive(_ part: HTTPRequestPart) -> HTTPRequestPart? {
        guard case .pending(let ended) = state else { return part }
        if case .end = part, !ended {
            state = .pending(ended: true)
        } else {
            held.append(.part(part))
        }
        return nil
    }

    /// Holds an event or error when an answer is pending; `false` when it goes on now.
    mutating func hold(_ item: Held) -> Bool {
        guard isPending else { return false }
        held.append(item)
        return true
    }

    /// The fast path takes the request whose head was just read.
    mutating func take() {
        state = .pending(ended: false)
    }

    /// The request whose head was just read goes to Hummingbird (its body and end follow it).
    mutating func handOn() {
        state = .hummingbird
        owedByHummingbird += 1
        readsSinceComplete = true
    }

    /// A part of a request given to Hummingbird.
    mutating func handedOnPart() {
        readsSinceComplete = true
    }

    /// Hummingbird saw a read-complete.
    mutating func readComplete() {
        readsSinceComplete = false
    }

    /// Hummingbird ended a response.
    mutating func hummingbirdResponseEnded() {
        owedByHummingbird = max(0, owedByHummingbird - 1)
    }

    /// The pending answer is complete (or the request was handed on).
    mutating func answered() {
        if isPending { state = .answered }
    }

    /// The next held input to replay, while nothing is pending.
    mutating func nextHeld() -> Held? {
        isPending ? nil : held.popFirst()
    }
}
