#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import WorkerJSON

/// runpod-python's log formats: `INFO   | job-1 | Started.` locally, and one JSON object a line
/// (`{"requestId","message","level"}`) when `RUNPOD_ENDPOINT_ID` is set, as the platform's log
/// viewer expects. Each line is written with one write(2), so concurrent jobs never interleave.
package struct RunPodLogHandler: LogHandler {
    package enum Format: Sendable { case text, json }

    package var logLevel: Logger.Level
    /// Every job's logger carries its id: kept in a field of its own rather than the metadata
    /// dictionary, so tagging a job's logger allocates nothing.
    private var jobID: Logger.Metadata.Value?
    private var otherMetadata: Logger.Metadata = [:]
    private let format: Format
    private let write: @Sendable (String) -> Void

    package init(
        label: String, format: Format, level: Logger.Level,
        write: @escaping @Sendable (String) -> Void = RunPodLogHandler.writeToStandardError
    ) {
        self.format = format
        self.logLevel = level
        self.write = write
    }

    package var metadata: Logger.Metadata {
        get {
            var all = otherMetadata
            if let jobID { all[Self.jobIDKey] = jobID }
            return all
        }
        set {
            var rest = newValue
            jobID = rest.removeValue(forKey: Self.jobIDKey)
            otherMetadata = rest
        }
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { key == Self.jobIDKey ? jobID : otherMetadata[key] }
        set {
            if key == Self.jobIDKey { jobID = newValue } else { otherMetadata[key] = newValue }
        }
    }

    private static let jobIDKey = "job-id"

    package func log(event: LogEvent) {
        // Two lines a job at INFO: the common case (no metadata beyond the job id) copies no
        // dictionary and counts no characters.
        var jobID = self.jobID
        var message = Self.truncated(event.message.description)
        if !otherMetadata.isEmpty || event.metadata?.isEmpty == false {
            var merged = otherMetadata
            if let extra = event.metadata { merged.merge(extra) { _, new in new } }
            if let tagged = merged.removeValue(forKey: Self.jobIDKey) { jobID = tagged }
            if !merged.isEmpty {
                message += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            }
        }
        let id = jobID?.description
        switch format {
        case .json:
            let line: JSONValue = [
                "requestId": id.map(JSONValue.string) ?? .null, "message": .string(message), "level": .string(Self.names(of: event.level).plain),
            ]
            write(((try? line.jsonString()) ?? message) + "\n")
        case .text:
            let padded = Self.names(of: event.level).padded
            if let id {
                write(padded + "| " + id + " | " + message + "\n")
            } else {
                write(padded + "| " + message + "\n")
            }
        }
    }

    /// The level's name as runpod-python writes it, and padded to 7 characters for its text format.
    static func names(of level: Logger.Level) -> (plain: String, padded: String) {
        switch level {
        case .trace: return ("TRACE", "TRACE  ")
        case .debug: return ("DEBUG", "DEBUG  ")
        case .info, .notice: return ("INFO", "INFO   ")
        case .warning: return ("WARN", "WARN   ")
        case .error, .critical: return ("ERROR", "ERROR  ")
        }
    }

    /// Messages over 4096 characters are cut in the middle, as the platform's logger does.
    static func truncated(_ message: String, limit: Int = 4096) -> String {
        // A string has at least as many UTF-8 bytes as characters: most messages are decided
        // without counting characters.
        guard message.utf8.count > limit, message.count > limit else { return message }
        let half = limit / 2
        return "\(message.prefix(half))\n...TRUNCATED \(message.count - limit) CHARACTERS...\n\(message.suffix(half))"
    }

    static let writeToStandardError: @Sendable (String) -> Void = { line in
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0, errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
    }
}

/// write(2), named so it does not clash with the handler's `write` property.
#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
