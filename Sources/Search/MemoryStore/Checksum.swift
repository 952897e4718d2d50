import Dispatch

/// A fast 64-bit checksum (four multiply-rotate lanes over 8-byte words, xxHash64's scheme) that
/// reads gigabytes per second, so verifying a large snapshot does not dominate start-up.
enum Checksum {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var acc = acc &+ input &* p2
        acc = (acc << 31) | (acc >> 33)
        return acc &* p1
    }

    static func of(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = bytes.count
        var index = 0
        var hash: UInt64
        if count >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while index + 32 <= count {
                v1 = round(v1, bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                v2 = round(v2, bytes.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self))
                v3 = round(v3, bytes.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self))
                v4 = round(v4, bytes.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self))
                index += 32
            }
            hash = ((v1 << 1) | (v1 >> 63)) &+ ((v2 << 7) | (v2 >> 57)) &+ ((v3 << 12) | (v3 >> 52)) &+ ((v4 << 18) | (v4 >> 46))
            for v in [v1, v2, v3, v4] { hash = (hash ^ round(0, v)) &* p1 &+ p4 }
        } else {
            hash = seed &+ p5
        }
        hash = hash &+ UInt64(count)
        while index + 8 <= count {
            hash ^= round(0, bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            hash = ((hash << 27) | (hash >> 37)) &* p1 &+ p4
            index += 8
        }
        while index < count {
            hash ^= UInt64(bytes[index]) &* p5
            hash = ((hash << 11) | (hash >> 53)) &* p1
            index += 1
        }
        hash ^= hash >> 33
        hash = hash &* p2
        hash ^= hash >> 29
        hash = hash &* p3
        hash ^= hash >> 32
        return hash
    }

    static func of(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { of($0) } }

    /// A checksum of a large block computed in 16 MB chunks on every core (each chunk seeded by its
    /// position, combined by xor), so verifying a gigabyte snapshot takes a fraction of a second.
    static func ofLarge(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let chunk = 16 << 20
        let chunks = max(1, (bytes.count + chunk - 1) / chunk)
        let results = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: chunks)
        defer { results.deallocate() }
        let box = UncheckedBox((bytes, results))
        DispatchQueue.concurrentPerform(iterations: chunks) { index in
            let (bytes, results) = box.value
            let start = index * chunk
            let end = min(start + chunk, bytes.count)
            results[index] = of(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), seed: seed &+ UInt64(index))
        }
        return results.reduce(0, ^)
    }
}

/// Little-endian encoding of the on-disk formats.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ value: String) {
        let utf8 = Array(value.utf8)
        u32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    mutating func floats(_ values: [Float]) {
        u32(UInt32(values.count))
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
}

/// Reads what ByteWriter wrote; every read is bounds-checked, so a damaged file is an error, not a crash.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8() throws(StoreError) -> UInt8 {
        guard remaining >= 1 else { throw .corrupt("truncated record") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u32() throws(StoreError) -> UInt32 {
        guard remaining >= 4 else { throw .corrupt("truncated record") }
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func u64() throws(StoreError) -> UInt64 {
        guard remaining >= 8 else { throw .corrupt("truncated record") }
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    mutating func string() throws(StoreError) -> String {
        let count = Int(try u32())
        guard remaining >= count else { throw .corrupt("truncated string") }
        defer { offset += count }
        guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
        else { throw .corrupt("invalid UTF-8") }
        return text
    }

    mutating func floats() throws(StoreError) -> [Float] {
        let count = Int(try u32())
        guard remaining >= count * 4 else { throw .corrupt("truncated vector") }
        defer { offset += count * 4 }
        return (0..<count).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + $0 * 4, as: UInt32.self))) }
    }
}

/// A store operation that failed, naming what is wrong and what to do.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
