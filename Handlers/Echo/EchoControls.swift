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
    var size: Int?

    init(_ input: [String: JSONValue]) throws(EchoInputError) {
        if let value = input["sleep"] {
            guard let seconds = value.doubleValue, seconds >= 0, seconds <= EchoHandler.maxSleepSeconds else {
                throw EchoInputError(key: "sleep", expected: "a number of seconds from 0 to \(Int(EchoHandler.maxSleepSeconds))", got: value)
            }
            sleep = seconds
        }
        if let value = input["cpu"] {
            guard let seconds = value.doubleValue, seconds >= 0, seconds <= EchoHandler.maxSleepSeconds else {
                throw EchoInputError(key: "cpu", expected: "a number of seconds from 0 to \(Int(EchoHandler.maxSleepSeconds))", got: value)
            }
            cpu = seconds
        }
        fail = try Self.string(input, "fail")
        returnError = try Self.string(input, "return_error")
        progress = try Self.count(input, "progress", limit: EchoHandler.maxCount) ?? 0
        stream = try Self.count(input, "stream", limit: EchoHandler.maxCount)
        size = try Self.count(input, "size", limit: EchoHandler.maxBlobBytes)
        if let value = input["refresh"] {
            guard let flag = value.boolValue else { throw EchoInputError(key: "refresh", expected: "true or false", got: value) }
            refresh = flag
        }
    }

    private static func string(_ input: [String: JSONValue], _ key: String) throws(EchoInputError) -> String? {
        guard let value = input[key] else { return nil }
        guard let text = value.stringValue else { throw EchoInputError(key: key, expected: "a string", got: value) }
        return text
    }

    private static func count(_ input: [String: JSONValue], _ key: String, limit: Int) throws(EchoInputError) -> Int? {
        guard let value = input[key] else { return nil }
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
