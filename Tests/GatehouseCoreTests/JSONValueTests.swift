import GatehouseCore
import Testing

@Suite("Strict JSON (RFC 8259) for request bodies")
struct JSONValueTests {
    static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }

    @Test("valid JSON parses: escapes, surrogate pairs, numbers, nesting, whitespace")
    func valid() throws {
        let value = try Self.parse(" {\"a\" : \"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\udd10é\", \"b\":[1,-0,0.5,1e3,-2.5E-3,true,false,null,{}], \"c\":{\"d\":[]}}\r\n")
        #expect(value == .object([
            "a": .string("x\"\\/\u{8}\u{C}\n\r\té🔐é"),
            "b": .array([.number("1"), .number("-0"), .number("0.5"), .number("1e3"), .number("-2.5E-3"), .bool(true), .bool(false), .null, .object([:])]),
            "c": .object(["d": .array([])]),
        ]))
        #expect(try Self.parse("\"top\"") == .string("top"))
    }

    @Test(
        "anything a lenient parser accepts is refused",
        arguments: [
            ("{\"a\":1,}", JSONSyntaxError.Reason.unexpected), ("[1,]", .unexpected), ("{\"a\":1 /* c */}", .unexpected),
            ("{\"a\":1} // c", .trailingContent), ("{\"a\":1}x", .trailingContent), ("{}{}", .trailingContent),
            ("{\"a\":1,\"a\":2}", .duplicateKey), ("{\"e\\u0301\":1,\"\\u00e9\":2}", .duplicateKey), ("{\"o\":{\"k\":1,\"k\":1}}", .duplicateKey),
            ("{'a':1}", .unexpected), ("{a:1}", .unexpected), ("\u{FEFF}{}", .unexpected), ("{\"a\":01}", .unexpected),
            ("{\"a\":+1}", .unexpected), ("{\"a\":.5}", .unexpected), ("{\"a\":1.}", .unexpected), ("{\"a\":NaN}", .unexpected),
            ("{\"a\":0x10}", .unexpected), ("{\"a\":tru}", .unexpected), ("{\"a\":\"\u{1}\"}", .unexpected),
            ("{\"a\":\"\\x\"}", .unexpected), ("{\"a\":\"\\ud83d\"}", .invalidText), ("{\"a\":\"\\udd10\"}", .invalidText),
            ("{\"a\":\"x", .truncated), ("{\"a\":", .truncated), ("", .truncated), ("{\"a\"\u{A0}:1}", .unexpected),
            (String(repeating: "[", count: 33) + String(repeating: "]", count: 33), .tooDeep),
        ]
    )
    func refused(text: String, reason: JSONSyntaxError.Reason) {
        #expect(throws: JSONSyntaxError.self) { try Self.parse(text) }
        do {
            _ = try Self.parse(text)
        } catch {
            #expect(error.reason == reason)
        }
    }

    @Test("invalid UTF-8 is refused, and the error never quotes the body")
    func invalidUTF8() {
        #expect {
            try JSONValue.parse(Array("{\"password\":\"secret".utf8) + [0xFF] + Array("\"}".utf8))
        } throws: { error in
            (error as? JSONSyntaxError)?.reason == .invalidText && !"\(error)".contains("secret")
        }
    }

    @Test("nesting is accepted up to 32 levels")
    func depth() throws {
        _ = try Self.parse(String(repeating: "[", count: 32) + String(repeating: "]", count: 32))
    }
}
