#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

extension WorkerConfiguration {
    /// Reads and validates the environment; the error names the offending variable.
    package static func fromEnvironment(
        _ env: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> WorkerConfiguration {
        let reader = EnvironmentReader(env)
        func value(_ name: String) -> String? { reader.string(name) }
        var config = WorkerConfiguration()
        let podID = value("RUNPOD_POD_ID")
        config.podIDIsSet = podID != nil
        config.workerID = podID ?? UUID().uuidString.lowercased()
        config.podHostname = value("RUNPOD_POD_HOSTNAME") ?? "unknown"
        config.apiKey = value("RUNPOD_AI_API_KEY")
        config.endpointID = value("RUNPOD_ENDPOINT_ID")

        if let interval = value("RUNPOD_PING_INTERVAL") {
            guard let ms = Int(interval), ms > 0 else {
                throw .invalidValue("RUNPOD_PING_INTERVAL", interval, expected: "a positive number of milliseconds")
            }
            config.pingInterval = .milliseconds(ms)
        }
        if let count = try reader.whole("WORKER_CONCURRENCY", in: 0...10_000) {
            // 0 is a fleet gateway that takes no jobs itself (docs/fleet.md); anywhere else there
            // would be nobody to run them.
            guard count > 0 || value("QUEUE_URL") != nil else {
                throw .invalidValue(
                    "WORKER_CONCURRENCY", "0",
                    expected: "a whole number from 1 to 10000 (0 only for a fleet gateway that takes no jobs, with QUEUE_URL set)")
            }
            config.concurrency = count
        }
        let levelVariable = env["RUNPOD_LOG_LEVEL"] != nil ? "RUNPOD_LOG_LEVEL" : "RUNPOD_DEBUG_LEVEL"
        if let level = value(levelVariable) {
            guard let parsed = Logger.Level(runpodName: level) else {
                throw .invalidValue(
                    levelVariable, level, expected: "one of NOTSET, TRACE, DEBUG, INFO, WARN, WARNING, ERROR or 0-5")
            }
            config.logLevel = parsed
        }

        if let seconds = try reader.positiveSeconds("WORKER_RESULT_RETRY_SECONDS") {
            config.timings.resultRetryBudget = seconds
        }
        if let seconds = try reader.positiveSeconds("WORKER_DELIVERY_GRACE_SECONDS") {
            config.timings.deliveryGrace = seconds
        }
        if let take = value("RUNPOD_WEBHOOK_GET_JOB") {
            let worker = config.workerID
            let jobTake = take.replacing("$ID", with: worker)
            try EnvironmentReader.checkHTTPURL(jobTake, variable: "RUNPOD_WEBHOOK_GET_JOB", original: take)
            func template(_ name: String) throws(ConfigurationError) -> String {
                guard let raw = value(name) else {
                    throw .invalidValue(name, "", expected: "a URL template; it is required when RUNPOD_WEBHOOK_GET_JOB is set")
                }
                let url = raw.replacing("$RUNPOD_POD_ID", with: worker)
                try EnvironmentReader.checkHTTPURL(url.replacing("$ID", with: "job"), variable: name, original: raw)
                return url
            }
            let ping = try value("RUNPOD_WEBHOOK_PING").map { raw throws(ConfigurationError) -> String in
                let url = raw.replacing("$RUNPOD_POD_ID", with: worker)
                try EnvironmentReader.checkHTTPURL(url, variable: "RUNPOD_WEBHOOK_PING", original: raw)
                return url
            }
            config.platform = PlatformEndpoints(
                jobTake: jobTake,
                jobDone: try template("RUNPOD_WEBHOOK_POST_OUTPUT"),
                jobStream: try template("RUNPOD_WEBHOOK_POST_STREAM"),
                ping: ping)
        }
        return config
    }

}

/// The value without surrounding spaces and tabs (a stray space in a template is a common slip).
package func trimmed(_ value: String) -> String {
    var slice = Substring(value)
    while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
    while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
    return String(slice)
}

extension Logger.Level {
    /// runpod-python's level names and indices, plus WARNING (which it rejects by mistake).
    package init?(runpodName: String) {
        switch runpodName.uppercased() {
        case "NOTSET", "0", "TRACE", "1": self = .trace
        case "DEBUG", "2": self = .debug
        case "INFO", "3": self = .info
        case "WARN", "WARNING", "4": self = .warning
        case "ERROR", "5": self = .error
        default: return nil
        }
    }
}
