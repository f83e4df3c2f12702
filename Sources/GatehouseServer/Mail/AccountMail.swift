import Foundation
import GatehouseCore
import GatehouseStore

/// The account mails (SPEC §2.4): password reset and email verification, each carrying a link
/// `<public_url><path>?token=<token>` and rendered from ``MailTemplates`` into the outbox's
/// ``OutgoingMail``. With `mail.mailer: none` nothing is queued.
struct AccountMail: Sendable {
    /// Mail settings.
    let configuration: MailConfiguration
    /// `public_url` without a trailing slash: links are never built from a request's Host.
    let publicURL: String
    /// The templates.
    let templates: MailTemplates
    /// The sender, parsed once.
    let from: MailAddress
    /// Wakes the delivery service after a message is queued.
    let delivery: MailDeliveryService?

    init(configuration: GatehouseConfiguration, delivery: MailDeliveryService?) throws {
        self.configuration = configuration.mail
        var base = configuration.publicURL
        while base.hasSuffix("/") { base.removeLast() }
        self.publicURL = base
        self.templates = try MailTemplates(overrides: configuration.mail.templateDir)
        self.from = try MailAddress(parsing: configuration.mail.from)
        self.delivery = delivery
    }

    /// Whether mail is sent at all.
    var isEnabled: Bool { configuration.mailer != .none }

    /// The link for a token on one of Gatehouse's pages.
    func link(_ path: String, token: SessionToken) -> String {
        "\(publicURL)\(path)?token=\(token.cookieValue)"
    }

    /// The rendered message of `template` for `user`, carrying `link`.
    func message(_ template: MailTemplates.Name, to user: User, link: String) throws -> OutgoingMail {
        let site = URLComponents(string: publicURL)?.host ?? publicURL
        let rendered = templates.render(template, ["email": user.email, "site": site, "link": link])
        let message = try MailMessage(
            from: from, to: user.email, subject: rendered.subject, text: rendered.text, html: rendered.html.isEmpty ? nil : rendered.html
        )
        return OutgoingMail(purpose: template.rawValue, envelopeFrom: from.address, recipient: user.email, message: message.rendered())
    }

    /// After a message was committed to the outbox: deliver it now rather than at the next poll.
    func queued() {
        delivery?.poke()
    }
}
