import Foundation
import GatehouseCore
import Mustache

/// The account mails' Mustache templates: `<name>.txt` (first line `Subject: …`, then the
/// text body) and `<name>.html`, built in and overridable one file at a time from
/// `mail.template_dir` (conf/mail/ holds copies of the built-in ones to start from).
struct MailTemplates: Sendable {
    /// The mails Gatehouse sends.
    enum Name: String, CaseIterable, Sendable {
        case passwordReset = "password_reset"
        case emailVerification = "email_verification"
    }

    /// One mail, rendered.
    struct Rendered: Sendable, Equatable {
        var subject: String
        var text: String
        var html: String
    }

    private let library: MustacheLibrary

    /// Loads the built-in templates, then any override in `directory`; a template that does not
    /// parse, or a text template without its subject line, stops startup naming the file.
    init(overrides directory: String) throws {
        var library = MustacheLibrary()
        for name in Name.allCases {
            for kind in ["txt", "html"] {
                let file = "\(name.rawValue).\(kind)"
                let override = directory.isEmpty ? nil : (directory as NSString).appendingPathComponent(file)
                let source: String
                if let override, FileManager.default.fileExists(atPath: override) {
                    guard let text = try? String(contentsOfFile: override, encoding: .utf8) else { throw MailTemplateError(file: override, problem: "cannot be read as UTF-8") }
                    source = text
                } else {
                    guard let url = Bundle.module.url(forResource: name.rawValue, withExtension: kind, subdirectory: "mail"),
                        let text = try? String(contentsOf: url, encoding: .utf8)
                    else { throw MailTemplateError(file: file, problem: "the built-in template is missing") }
                    source = text
                }
                if kind == "txt", !source.hasPrefix("Subject: ") {
                    throw MailTemplateError(file: override ?? file, problem: "the first line must be `Subject: …`")
                }
                do {
                    try library.register(source, named: file)
                } catch {
                    throw MailTemplateError(file: override ?? file, problem: "is not a valid Mustache template (\(error))")
                }
            }
        }
        self.library = library
    }

    /// Renders one mail with `values` (`email`, `site`, `link`).
    func render(_ name: Name, _ values: [String: String]) -> Rendered {
        let text = library.render(values, withTemplate: "\(name.rawValue).txt") ?? ""
        let html = library.render(values, withTemplate: "\(name.rawValue).html") ?? ""
        let firstLine = text.prefix { $0 != "\n" }
        let body = text.dropFirst(firstLine.count).drop { $0 == "\n" }
        let subject = firstLine.dropFirst("Subject: ".count).trimmingCharacters(in: .whitespaces)
        return Rendered(subject: subject.isEmpty ? name.rawValue : String(subject), text: String(body), html: html)
    }
}

/// A mail template that cannot be used.
struct MailTemplateError: Error, CustomStringConvertible {
    /// The file.
    let file: String
    /// What is wrong.
    let problem: String

    var description: String { "mail template \(file): \(problem)" }
}
