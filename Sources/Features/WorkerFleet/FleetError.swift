import RedisClient

/// What went wrong in the fleet, saying what to do.
struct FleetError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case oldRedis, damagedRecord, unexpectedReply
    }

    private let code: Code
    let message: String

    static func oldRedis(server: String, version: String) -> Self {
        Self(code: .oldRedis, message: "the fleet's Redis at \(server) is version \(version); fleets need Redis 6.2 or later (XAUTOCLAIM)")
    }

    /// A key of the fleet holds something no fleet process wrote.
    static func damagedRecord(_ key: String, _ problem: String) -> Self {
        Self(code: .damagedRecord, message: "the fleet's record \(key) is damaged: \(problem); delete the key or fix what writes it")
    }

    static func unexpectedReply(_ step: String, _ reply: RedisValue) -> Self {
        Self(code: .unexpectedReply, message: "the fleet's \(step) script answered \(reply), which this version does not understand")
    }

    var description: String { message }

    /// An error as the fleet's logs and answers show it: the Redis client's hints name
    /// `REDIS_URL`, the fleet's variable is `QUEUE_URL`.
    static func describe(_ error: any Error) -> String {
        "\(error)".replacing("REDIS_URL", with: "QUEUE_URL")
    }
}
