/// Where cached answers live: in the process or in Redis.
package protocol ResponseCacheBackend: Sendable {
    /// For logs: `in-process` or `redis host:port`.
    var name: String { get }
    func get(_ key: String) async throws -> [UInt8]?
    func set(_ key: String, _ value: [UInt8], ttl: Duration) async throws
}
