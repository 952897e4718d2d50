/// The Redis Cluster slot of a key, computed exactly as Redis does (`keyHashSlot` in
/// cluster.c): CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the key, modulo 16384.
/// Only a hash tag is hashed when the key has one: the text between its first `{` and the first
/// `}` after that, if not empty. So `{endpoint}:jobs` and `{endpoint}:results` share a slot,
/// while `{}x` and `x{}{y}` hash whole and `x{{y}}` hashes `{y`.
package enum HashSlot {
    package static let count = 16384

    package static func of(_ key: [UInt8]) -> Int {
        key.withUnsafeBufferPointer { of(UnsafeRawBufferPointer($0)) }
    }

    package static func of(_ key: UnsafeRawBufferPointer) -> Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return Int(crc16(UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close])) & 0x3FFF)
        }
        return Int(crc16(key) & 0x3FFF)
    }

    /// CRC16/XMODEM, a byte at a time through a table (a key is hashed on every cluster call).
    static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte))]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
