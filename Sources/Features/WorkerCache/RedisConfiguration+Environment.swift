import RedisClient
import WorkerRuntime

extension RedisConfiguration {
    /// `REDIS_URL` and the `REDIS_*` settings as a handler's configuration reads them: nil when
    /// `REDIS_URL` is unset, a `ConfigurationError` naming the variable (never the password)
    /// when something is malformed.
    public static func fromWorkerEnvironment(_ env: [String: String]) throws(ConfigurationError) -> RedisConfiguration? {
        do {
            return try fromEnvironment(env)
        } catch {
            if error.command == "configuration" {
                throw .invalidValue(
                    "REDIS_URL", error.server, expected: "\(error.reason): redis://[user:password@]host[:port][/db], or rediss:// for TLS")
            }
            // `NAME=value`, as the setting was given.
            let parts = error.command.split(separator: "=", maxSplits: 1)
            throw .invalidValue(String(parts.first ?? ""), parts.count > 1 ? String(parts[1]) : "", expected: error.reason)
        }
    }
}
