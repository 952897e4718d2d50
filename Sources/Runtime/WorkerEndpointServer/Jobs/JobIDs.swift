import Synchronization

/// Job ids in RunPod's shape (`<uuid>-u1`, `sync-<uuid>-u1`), made without a system call: a
/// counter run through a keyed permutation (SplitMix64's finalizer over two random keys), so ids
/// never repeat within a process and cannot be guessed from one another. `UUID()` reads
/// /dev/urandom and formats with printf for every id, a large share of a /runsync's cost.
package final class JobIDs: Sendable {
    private let counter = Atomic<UInt64>(0)
    private let keys: (UInt64, UInt64)

    package init() {
        var generator = SystemRandomNumberGenerator()
        keys = (generator.next(), generator.next())
    }

    package func next(sync: Bool) -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        var high = Self.mix(n &+ keys.0)
        var low = Self.mix(n ^ keys.1)
        // Version 4 and the RFC 4122 variant, so the id reads as a random UUID.
        high = (high & ~0xF000) | 0x4000
        low = (low & ~(0xC << 60)) | (0x8 << 60)
        // Written straight into the string's storage: no intermediate array to allocate and copy.
        return String(unsafeUninitializedCapacity: 44) { buffer in
            var out = buffer.baseAddress!
            func put(_ text: StaticString) {
                out.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
                out += text.utf8CodeUnitCount
            }
            func hex(_ value: UInt64, digits: Int) {
                Self.hex(value, digits: digits, into: out)
                out += digits
            }
            if sync { put("sync-") }
            hex(high >> 32, digits: 8)
            put("-")
            hex(high >> 16, digits: 4)
            put("-")
            hex(high, digits: 4)
            put("-")
            hex(low >> 48, digits: 4)
            put("-")
            hex(low, digits: 12)
            put("-u1")
            return out - buffer.baseAddress!
        }
    }

    /// SplitMix64's step and finalizer: a bijection on 64 bits that scatters neighbouring inputs
    /// (the job table's digest mixes with it too).
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The low `digits` nibbles of `value` as lowercase hex, most significant first.
    @inline(__always)
    private static func hex(_ value: UInt64, digits: Int, into out: UnsafeMutablePointer<UInt8>) {
        var value = value
        var index = digits
        while index > 0 {
            index -= 1
            let nibble = UInt8(truncatingIfNeeded: value) & 0xF
            // '0'...'9' then 'a'...'f': 39 is the gap between '9' + 1 and 'a'.
            out[index] = nibble &+ 48 &+ (nibble > 9 ? 39 : 0)
            value &>>= 4
        }
    }
}
