import WorkerJSON

/// A body to post, as a value and as the exact bytes that go on the wire.
package struct ResultPayload: Sendable {
    package let json: JSONValue
    package let bytes: [UInt8]

    package init(json: JSONValue, bytes: [UInt8]) {
        self.json = json
        self.bytes = bytes
    }

    package init(_ json: JSONValue) throws(JSONError) {
        self.init(json: json, bytes: try json.serialized())
    }
}
