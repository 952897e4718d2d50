import COpenSSL
import WorkerJSON

/// The cache key of a job: the handler's name and the SHA-256 of its input's canonical JSON
/// (sorted keys, normalised numbers), so `{"a":1,"b":2}` and `{"b":2.0,"a":1}` share an entry.
package enum CacheKey {
    package static func make(handler: String, input: JSONValue) throws(JSONError) -> String {
        let canonical = try input.serialized()
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        _ = SHA256(canonical, canonical.count, &digest)
        let hex = Array("0123456789abcdef".utf8)
        var key = Array("worker-cache:\(handler):".utf8)
        for byte in digest {
            key.append(hex[Int(byte >> 4)])
            key.append(hex[Int(byte & 15)])
        }
        return String(decoding: key, as: UTF8.self)
    }
}
