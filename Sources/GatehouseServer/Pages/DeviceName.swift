/// A session's device as the account page names it: "Firefox on Windows" from its user
/// agent, or the agent's start when neither is known.
enum DeviceName {
    /// Browser tokens, the most specific first (Edge and Opera also say Chrome; Chrome also says Safari).
    static let browsers = [
        ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"), ("HeadlessChrome/", "Headless Chrome"),
        ("CriOS/", "Chrome"), ("Chrome/", "Chrome"), ("Version/", "Safari"),
    ]
    /// Systems, the most specific first (Android also says Linux; iPhones also say Mac OS X).
    static let systems = [
        ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"), ("CrOS", "ChromeOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"),
    ]

    static func summary(_ userAgent: String) -> String {
        guard !userAgent.isEmpty else { return "Unknown device" }
        let browser = browsers.first { userAgent.contains($0.0) }?.1
        let system = systems.first { userAgent.contains($0.0) }?.1
        switch (browser, system) {
        case let (browser?, system?): return "\(browser) on \(system)"
        case let (browser?, nil): return browser
        case let (nil, system?): return system
        case (nil, nil): return userAgent.count > 40 ? userAgent.prefix(40) + "…" : userAgent
        }
    }
}
