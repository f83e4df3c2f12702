/// The `Date` header's format (RFC 9110 IMF-fixdate), without Foundation's formatters.
public enum HTTPDate {
    static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Wed, 25 Nov 2026 03:23:28 GMT` for whole seconds since 1970 (UTC).
    public static func imfFixdate(secondsSince1970 seconds: Int64) -> String {
        let date = CivilTime(secondsSince1970: Int(seconds))
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekdays[date.weekdayFromThursday]), \(two(date.day)) \(months[date.month - 1]) \(date.year) \(two(date.hour)):\(two(date.minute)):\(two(date.second)) GMT"
    }
}

/// A second since 1970 as a UTC calendar date and time, by the days-to-civil-date arithmetic
/// of the proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`): no time zone
/// database, no formatter. Shared by the `Date` header and the log timestamps.
public struct CivilTime: Sendable, Equatable {
    public let year: Int
    /// 1–12.
    public let month: Int
    /// 1–31.
    public let day: Int
    public let hour: Int
    public let minute: Int
    public let second: Int
    /// 0 for Thursday (1970-01-01 was one), … 6 for Wednesday.
    public let weekdayFromThursday: Int

    public init(secondsSince1970 seconds: Int) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
        weekdayFromThursday = ((days % 7) + 7) % 7
    }
}
