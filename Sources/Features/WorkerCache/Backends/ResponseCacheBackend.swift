/// Where cached answers are shared between workers (Redis), behind the in-process `NearCache`.
package protocol ResponseCacheBackend: Sendable {
    /// For logs: `redis host:port`.
    var name: String { get }
    /// The answer's JSON and how long it has left, or nil when missing.
    func get(_ key: String) async throws -> (value: [UInt8], timeToLive: Duration?)?
    func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws
}
