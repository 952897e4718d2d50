import CHiredis

/// Commands on the wire, formatted by hiredis's `redisFormatCommandArgv` (binary-safe arguments).
package enum RESPFormat {
    /// Appends `command` in RESP to `out`.
    package static func append(_ command: RedisCommand, to out: inout [UInt8]) {
        // One contiguous copy of the arguments, so every pointer handed to C stays valid together.
        var storage: [UInt8] = []
        storage.reserveCapacity(command.reduce(0) { $0 + $1.bytes.count })
        var offsets: [Int] = []
        offsets.reserveCapacity(command.count)
        for argument in command {
            offsets.append(storage.count)
            storage.append(contentsOf: argument.bytes)
        }
        let lengths = command.map(\.bytes.count)
        storage.withUnsafeBufferPointer { buffer in
            // An empty argument still needs a non-null pointer; hiredis reads zero bytes from it.
            let base = UnsafeRawPointer(buffer.baseAddress) ?? UnsafeRawPointer(bitPattern: 1)!
            var argv: [UnsafePointer<CChar>?] = offsets.map { (base + $0).assumingMemoryBound(to: CChar.self) }
            var formatted: UnsafeMutablePointer<CChar>? = nil
            let length = argv.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { lengths in
                    redisFormatCommandArgv(&formatted, Int32(command.count), argv.baseAddress, lengths.baseAddress)
                }
            }
            guard length > 0, let formatted else {
                // Only an allocation failure gets here; hiredis's format is otherwise total.
                fatalError("hiredis could not format a command (out of memory)")
            }
            formatted.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { bytes in
                out.append(contentsOf: UnsafeBufferPointer(start: bytes, count: Int(length)))
            }
            redisFreeCommand(formatted)
        }
    }
}
