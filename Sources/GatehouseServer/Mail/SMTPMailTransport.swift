import Foundation
import GatehouseCore
import GatehouseStore
import Logging

/// The `smtp` mailer: one connection per message to `mail.smtp` (STARTTLS or implicit TLS
/// verified against the host name, AUTH only over TLS). The password comes from
/// `mail.smtp.password_file` or `GATEHOUSE_MAIL_SMTP_PASSWORD`, never from the YAML.
struct SMTPMailTransport: MailTransport {
    /// The environment variable that may carry the AUTH password.
    static let passwordVariable = "GATEHOUSE_MAIL_SMTP_PASSWORD"

    let client: SMTPClient

    init(_ settings: SMTPServerConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger = Logger(label: "gatehouse.smtp")) throws {
        var password: String?
        if !settings.passwordFile.isEmpty {
            guard let text = try? String(contentsOfFile: settings.passwordFile, encoding: .utf8) else {
                throw ConfigurationError(key: "mail.smtp.password_file", message: "cannot read \(settings.passwordFile)")
            }
            password = text.trimmingCharacters(in: .newlines)
        } else if let variable = environment[Self.passwordVariable] {
            password = variable
        }
        if password != nil, settings.username.isEmpty {
            throw ConfigurationError(key: "mail.smtp.username", message: "a password is set (mail.smtp.password_file or \(Self.passwordVariable)) but no username")
        }
        if !settings.username.isEmpty, password == nil {
            throw ConfigurationError(key: "mail.smtp.password_file", message: "mail.smtp.username is set: give the password in a file or in \(Self.passwordVariable)")
        }
        let configuration = SMTPConfiguration(
            host: settings.host, port: settings.port, security: settings.security, username: settings.username.isEmpty ? nil : settings.username,
            password: password, connectTimeout: settings.timeout, commandTimeout: settings.timeout,
            extraTrustedCertificatesPath: settings.caFile.isEmpty ? nil : settings.caFile
        )
        do {
            client = try SMTPClient(configuration: configuration, logger: logger)
        } catch {
            throw ConfigurationError(key: "mail.smtp", message: error.description)
        }
    }

    func deliver(_ mail: OutgoingMail) async throws {
        do {
            try await client.send(from: mail.envelopeFrom, to: mail.recipient, data: mail.message)
        } catch {
            throw MailDeliveryError(description: error.description, isTransient: error.isTransient)
        }
    }
}
