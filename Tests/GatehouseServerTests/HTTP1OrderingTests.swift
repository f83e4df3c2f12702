import HTTPTypes
import NIOHTTPTypes
import Testing

@testable import GatehouseServer

@Suite("HTTP/1 order of the fast path")
struct HTTP1OrderingTests {
    static let head = HTTPRequestPart.head(HTTPRequest(method: .get, scheme: "http", authority: "x", path: "/next"))

    @Test("behind a pending answer: its own end is not held, later input is held in order and replayed only once it is answered")
    func holdsBehindPending() {
        var ordering = HTTP1Ordering()
        ordering.take()
        let ownEnd = ordering.receive(.end(nil))
        #expect(ownEnd == nil)
        #expect(ordering.pendingEnded)
        // Nothing held yet: reading goes on.
        #expect(ordering.mayRead(writable: true))
        let later = ordering.receive(Self.head)
        let heldEvent = ordering.hold(.event("half-closed"))
        #expect(later == nil && heldEvent)
        // Something held: no more reading, and nothing replays while pending.
        #expect(!ordering.mayRead(writable: true))
        let early = ordering.nextHeld()
        #expect(early == nil)
        ordering.answered()
        guard case .part(.head(let next)) = ordering.nextHeld() else {
            Issue.record("the held head is not first")
            return
        }
        #expect(next.path == "/next")
        guard case .event(let event) = ordering.nextHeld() else {
            Issue.record("the held event is not second")
            return
        }
        #expect(event as? String == "half-closed")
        let rest = ordering.nextHeld()
        #expect(rest == nil)
    }

    @Test("a request is taken only when Hummingbird owes no response; input goes straight on otherwise")
    func takesOnlyWhenHummingbirdIsDone() {
        var ordering = HTTP1Ordering()
        #expect(ordering.mayTake)
        ordering.handOn()
        #expect(!ordering.mayTake)
        let end = ordering.receive(.end(nil))
        let held = ordering.hold(.event("x"))
        #expect(end != nil && !held)
        ordering.hummingbirdResponseEnded()
        #expect(ordering.mayTake)
        // A client not reading its answers pauses reading whatever the state.
        #expect(!ordering.mayRead(writable: false))
    }
}
