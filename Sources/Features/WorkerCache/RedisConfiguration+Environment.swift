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
            let bad = error.badSetting
            throw .invalidValue(bad.variable, bad.value, expected: bad.expected)
        }
    }
}
