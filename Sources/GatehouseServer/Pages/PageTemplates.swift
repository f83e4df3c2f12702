import Foundation
import GatehouseCore
import Mustache

/// The pages' Mustache templates (SPEC §2.5): one per page, rendered into `layout.mustache`,
/// and `style.css`; built in and overridable one file at a time from `pages.template_dir`
/// (conf/pages/ holds copies of the built-in ones to start from).
struct PageTemplates: Sendable {
    /// The pages Gatehouse renders.
    enum Page: String, CaseIterable, Sendable {
        case login, signup, logout, forgot, reset, verify, mfa, account, message, error
        case totpSetup = "totp_setup"
        case recoveryCodes = "recovery_codes"
    }

    private let library: MustacheLibrary
    /// `style.css`, rendered once with the accent colour.
    let stylesheet: String
    /// Branding every page carries.
    let branding: [String: String]

    /// Loads the built-in templates, then any override in `pages.template_dir`; one that does
    /// not parse stops startup naming the file.
    init(_ configuration: PagesConfiguration) throws {
        var library = MustacheLibrary()
        for name in Page.allCases.map({ "\($0.rawValue).mustache" }) + ["layout.mustache", "style.css"] {
            let source = try Self.source(name, overrides: configuration.templateDir)
            do {
                try library.register(source.text, named: name)
            } catch {
                throw PageTemplateError(file: source.path, problem: "is not a valid Mustache template (\(error))")
            }
        }
        self.library = library
        // Mustache shows a section for an empty string too: no logo, no key.
        branding = ["product": configuration.productName, "accent": configuration.accentColor].merging(
            configuration.logoURL.isEmpty ? [:] : ["logo_url": configuration.logoURL]) { $1 }
        stylesheet = library.render(branding, withTemplate: "style.css") ?? ""
    }

    private static func source(_ file: String, overrides directory: String) throws -> (text: String, path: String) {
        if !directory.isEmpty {
            let path = (directory as NSString).appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: path) {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw PageTemplateError(file: path, problem: "cannot be read as UTF-8") }
                return (text, path)
            }
        }
        let name = (file as NSString).deletingPathExtension
        let kind = (file as NSString).pathExtension
        guard let url = Bundle.module.url(forResource: name, withExtension: kind, subdirectory: "pages"), let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw PageTemplateError(file: file, problem: "the built-in template is missing")
        }
        return (text, file)
    }

    /// A whole HTML document: `page` rendered with `values`, inside the layout titled `title`.
    /// Every value is HTML-escaped by Mustache except `content` (the page itself) and the
    /// QR code's SVG, which Gatehouse draws.
    func render(_ page: Page, title: String, _ values: [String: Any]) -> String {
        var context: [String: Any] = branding
        context.merge(values) { $1 }
        context["title"] = title
        context["content"] = library.render(context, withTemplate: "\(page.rawValue).mustache") ?? ""
        return library.render(context, withTemplate: "layout.mustache") ?? ""
    }
}

/// A page template that cannot be used.
struct PageTemplateError: Error, CustomStringConvertible {
    /// The file.
    let file: String
    /// What is wrong.
    let problem: String

    var description: String { "page template \(file): \(problem)" }
}
