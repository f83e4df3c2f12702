/// The mask-selection penalty of ISO/IEC 18004 §7.8.3.1: the lower, the easier to scan.
enum QRPenalty {
    /// N1–N4 of Table 11: runs of five or more, 2×2 blocks, finder-like 1:1:3:1:1 patterns with
    /// four light modules on one side (the border counts as light), and dark/light imbalance.
    static func score(of matrix: QRMatrix) -> Int {
        let size = matrix.size
        var result = 0
        for y in 0..<size {
            result += line(size: size) { matrix.isDark(x: $0, y: y) }
        }
        for x in 0..<size {
            result += line(size: size) { matrix.isDark(x: x, y: $0) }
        }
        for y in 0..<(size - 1) {
            for x in 0..<(size - 1) {
                let dark = matrix.isDark(x: x, y: y)
                if dark == matrix.isDark(x: x + 1, y: y), dark == matrix.isDark(x: x, y: y + 1), dark == matrix.isDark(x: x + 1, y: y + 1) {
                    result += 3
                }
            }
        }
        let dark = matrix.modules.count(where: { $0 })
        let total = size * size
        let k = (abs(dark * 20 - total * 10) + total - 1) / total - 1
        return result + k * 10
    }

    /// N1 and N3 for one row or column, `isDark` giving its modules in order.
    private static func line(size: Int, _ isDark: (Int) -> Bool) -> Int {
        var result = 0
        var runs = RunHistory(size: size)
        var runDark = false
        var runLength = 0
        for index in 0..<size {
            if isDark(index) == runDark {
                runLength += 1
                if runLength == 5 { result += 3 } else if runLength > 5 { result += 1 }
            } else {
                runs.add(runLength)
                if !runDark { result += runs.finderLikePatterns() * 40 }
                runDark = isDark(index)
                runLength = 1
            }
        }
        if runDark {
            runs.add(runLength)
            runLength = 0
        }
        runs.add(runLength + size)
        return result + runs.finderLikePatterns() * 40
    }

    /// The last seven run lengths of a line, newest first, the light border folded into the first.
    private struct RunHistory {
        let size: Int
        var lengths = [Int](repeating: 0, count: 7)

        mutating func add(_ length: Int) {
            lengths.removeLast()
            lengths.insert(lengths[0] == 0 ? length + size : length, at: 0)
        }

        /// 0, 1 or 2: the newest runs read light, dark n, light n, dark 3n, light n, dark n,
        /// with at least 4n light on one end and n on the other. Call after adding a light run.
        func finderLikePatterns() -> Int {
            let n = lengths[1]
            let core = n > 0 && lengths[2] == n && lengths[3] == n * 3 && lengths[4] == n && lengths[5] == n
            guard core else { return 0 }
            return (lengths[0] >= n * 4 && lengths[6] >= n ? 1 : 0) + (lengths[6] >= n * 4 && lengths[0] >= n ? 1 : 0)
        }
    }
}
