extension QRCode {
    /// The code as one SVG image: a viewBox in modules, a white background and a single path of
    /// the dark modules (one rectangle per horizontal run), labelled `label` for screen readers.
    /// `moduleSize` sets the pixel width and height; `quietZone` the light margin in modules
    /// (the standard asks for 4).
    public func svg(label: String, moduleSize: Int = 4, quietZone: Int = 4) -> String {
        let side = size + 2 * quietZone
        var path = ""
        for y in 0..<size {
            var x = 0
            while x < size {
                guard isDark(x: x, y: y) else { x += 1; continue }
                let start = x
                while x < size, isDark(x: x, y: y) { x += 1 }
                path += "M\(start + quietZone) \(y + quietZone)h\(x - start)v1h-\(x - start)z"
            }
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(side) \(side)" width="\(side * moduleSize)" \
            height="\(side * moduleSize)" role="img" aria-label="\(Self.escapeXML(label))" shape-rendering="crispEdges">\
            <rect width="\(side)" height="\(side)" fill="#fff"/><path fill="#000" d="\(path)"/></svg>
            """
    }

    /// `text` safe inside a double-quoted XML attribute; control characters, which XML forbids,
    /// are dropped.
    static func escapeXML(_ text: String) -> String {
        var result = ""
        for character in text where !character.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
