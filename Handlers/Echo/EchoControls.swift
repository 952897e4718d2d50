import WorkerJSON
import WorkerRuntime

/// Echo's control keys, validated: a mistyped or out-of-range value is an error naming the key.
struct EchoControls: Equatable {
    var sleep: Double?
    var cpu: Double?
    var fail: String?
    var returnError: String?
    var progress = 0
    var stream: Int?
    var refresh = false
    /// End the whole process abruptly (SIGKILL of itself) after `sleep`: a poison job for fleet tests.
    var crash = false
    var size: Int?
    /// A text each progress update carries as its `message`.
    var note: String?

    init(_ input: [String: JSONValue]) throws(EchoInputError) {
        // One pass over the input's keys (usually few) rather than a lookup per control key.
        for (key, value) in input {
            switch key {
            case "sleep": sleep = try Self.seconds(value, key)
            case "cpu": cpu = try Self.seconds(value, key)
            case "fail": fail = try Self.string(value, key)
            case "return_error": returnError = try Self.string(value, key)
            case "progress": progress = try Self.count(value, key, limit: EchoHandler.maxCount)
            case "stream": stream = try Self.count(value, key, limit: EchoHandler.maxCount)
            case "size": size = try Self.count(value, key, limit: EchoHandler.maxBlobBytes)
            case "note":
                note = try Self.string(value, key)
                guard note!.utf8.count <= 10_000 else { throw EchoInputError(key: key, expected: "a string of at most 10000 bytes", got: value) }
            case "crash":
                guard let flag = value.boolValue else { throw EchoInputError(key: key, expected: "true or false", got: value) }
                crash = flag
            case "refresh":
                guard let flag = value.boolValue else { throw EchoInputError(key: key, expected: "true or false", got: value) }
                refresh = flag
            default: continue
            }
        }
    }

    private static func seconds(_ value: JSONValue, _ key: String) throws(EchoInputError) -> Double {
        guard let seconds = value.doubleValue, seconds >= 0, seconds <= EchoHandler.maxSleepSeconds else {
            throw EchoInputError(key: key, expected: "a number of seconds from 0 to \(Int(EchoHandler.maxSleepSeconds))", got: value)
        }
        return seconds
    }

    private static func string(_ value: JSONValue, _ key: String) throws(EchoInputError) -> String {
        guard let text = value.stringValue else { throw EchoInputError(key: key, expected: "a string", got: value) }
        return text
    }

    private static func count(_ value: JSONValue, _ key: String, limit: Int) throws(EchoInputError) -> Int {
        guard let count = value.intValue, count >= 0, count <= limit else {
            throw EchoInputError(key: key, expected: "a whole number from 0 to \(limit)", got: value)
        }
        return count
    }
}
struct EchoInputError: Error, CustomStringConvertible, Equatable {
    let key: String
    let expected: String
    let got: JSONValue
    var description: String {
        let shown = (try? got.jsonString()).map { String($0.prefix(100)) } ?? got.typeName
        return "input.\(key) must be \(expected), got \(shown)"
    }
}
