import Foundation

/// Where scripts/bootstrap installs the tests' Python peers (Tests/python/requirements.txt).
public let pythonPackages = packageRoot + "/.build-python"

/// A `python3` process that imports the tests' Python peers: `arguments` are what follows
/// `python3` (`["-c", source]`, `["-m", module, …]`, a script path).
public func pythonProcess(_ arguments: [String]) throws -> Process {
    guard FileManager.default.fileExists(atPath: pythonPackages) else {
        throw ProcessError(message: "\(pythonPackages) is missing: run scripts/bootstrap")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try findExecutable("python3"))
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["PYTHONPATH"] = pythonPackages
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    process.environment = environment
    return process
}

/// Runs a Python snippet to completion and returns its standard output; throws with its
/// standard error when it exits non-zero. The wait is on a thread of its own: a blocked
/// thread of the two-thread concurrency pool would stall every other test in the run.
public func runPython(_ source: String, arguments: [String] = []) async throws -> String {
    try await onThread { try runPythonBlocking(source, arguments: arguments) }
}

/// Runs one of the tests' Python scripts (`Tests/python/<name>`) to completion, as ``runPython(_:arguments:)`` does.
public func runPythonScript(_ name: String, arguments: [String] = []) async throws -> String {
    try await onThread { try runPythonBlocking(arguments: [packageRoot + "/Tests/python/" + name] + arguments) }
}

private func runPythonBlocking(_ source: String, arguments: [String]) throws -> String {
    try runPythonBlocking(arguments: ["-c", source] + arguments)
}

private func runPythonBlocking(arguments: [String]) throws -> String {
    let process = try pythonProcess(arguments)
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ProcessError(message: "python3 failed: \(String(decoding: errorData, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self)
}
