import Foundation
import Testing

@testable import GatehouseCore

/// The README's configuration table and `conf/gatehouse.yaml` are written by hand; these
/// tests hold them to ``ConfigurationKey/all``, the one declaration of every key.
@Suite("Configuration reference matches the declared keys")
struct ConfigurationReferenceTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `upstreams` and `routes` are examples in `conf/gatehouse.yaml`, not their (empty) defaults.
    static let examples: Set<String> = ["upstreams", "routes"]

    /// `key → default` from the rows of the README's "Configuration" table.
    static func readmeTable() throws -> [(key: String, defaultValue: String)] {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n## Configuration\n").dropFirst().first)
            .components(separatedBy: "\n## ").first ?? ""
        return section.split(separator: "\n").filter { $0.hasPrefix("| `") }.map { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let unquote = { (cell: String) in cell.hasPrefix("`") && cell.hasSuffix("`") && cell.count > 1 ? String(cell.dropFirst().dropLast()) : cell }
            return (unquote(cells[1]), unquote(cells[2]))
        }
    }

    /// `text` read as YAML by `key`, shown as `key` shows values.
    static func value(of key: ConfigurationKey, readFrom text: String) throws -> String {
        guard case .mapping(let entries) = try ConfigurationLoader.tree(yaml: "value: \(text)", source: key.path), let node = entries["value"] else {
            return "(unreadable: \(text))"
        }
        var configuration = GatehouseConfiguration()
        try key.decode(node, key.path, &configuration)
        return key.value(in: configuration)
    }

    @Test("the README table lists every declared key with its default, and nothing else")
    func readme() throws {
        let rows = try Self.readmeTable()
        let documented = Dictionary(rows.map { ($0.key, $0.defaultValue) }, uniquingKeysWith: { first, _ in first })
        #expect(documented.count == rows.count, "a key appears twice in the README table")
        for key in ConfigurationKey.all {
            #expect(documented[key.path] != nil, "\(key.path) is declared but missing from the README table")
            if let shown = documented[key.path] {
                // Compared as values, not text: `24h` and `1d` are the same default.
                #expect(
                    try Self.value(of: key, readFrom: shown) == key.defaultValue,
                    "README shows \(key.path) defaulting to \(shown); the code says \(key.defaultValue)"
                )
            }
        }
        for key in documented.keys where ConfigurationKey.byPath[key] == nil {
            Issue.record("README documents \(key), which no ConfigurationKey declares")
        }
        #expect(rows.map(\.key) == ConfigurationKey.all.map(\.path).filter { documented[$0] != nil }, "the README table's order differs from ConfigurationKey.all")
    }

    @Test("conf/gatehouse.yaml shows every declared key with its default (examples aside), and nothing else")
    func referenceFile() throws {
        let path = Self.packageRoot.appendingPathComponent("conf/gatehouse.yaml").path
        // Loading refuses any key that is not declared.
        let loaded = try ConfigurationLoader.load(path: path, environment: [:])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let root = try ConfigurationLoader.tree(yaml: text, source: path)
        for key in ConfigurationKey.all {
            var node = root
            for part in key.path.split(separator: ".") {
                guard case .mapping(let entries) = node, let child = entries[String(part)] else {
                    node = .null
                    break
                }
                node = child
            }
            if case .null = node {
                Issue.record("\(key.path) is declared but not shown in conf/gatehouse.yaml")
            } else if !Self.examples.contains(key.path) {
                #expect(key.value(in: loaded) == key.defaultValue, "conf/gatehouse.yaml sets \(key.path) to \(key.value(in: loaded)), not its default \(key.defaultValue)")
            }
        }
    }
}
