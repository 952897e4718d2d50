import WorkerJSON

/// A body to post, as a value. Its size is known up front (the platform's limits are checked
/// against it); the exact bytes are produced only by a sink that sends them.
package struct ResultPayload: Sendable {
    package let json: JSONValue
    /// The length of `bytes`.
    package let byteCount: Int

    /// Validates `json` (no NaN or infinity) and measures it.
    package init(_ json: JSONValue) throws(JSONError) {
        self.json = json
        self.byteCount = try json.serializedCount()
    }

    /// The body on the wire (canonical JSON). The value was validated when measured, so this
    /// cannot fail.
    package var bytes: [UInt8] {
        (try? json.serialized()) ?? []
    }
}
