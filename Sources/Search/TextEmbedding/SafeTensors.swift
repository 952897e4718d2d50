import CEncoderKernels
import WorkerJSON

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the data. Read here without any library; float32
/// tensors are used in place, float16 ones converted once.
struct SafeTensors: Sendable {
    struct Entry: Sendable {
        let dtype: String
        let shape: [Int]
        let start: Int
        let end: Int
    }

    let path: String
    let file: MappedFile
    let entries: [String: Entry]
    private let dataStart: Int

    init(path: String) throws(EmbeddingModelError) {
        self.path = path
        file = try MappedFile(path: path)
        guard file.count >= 8 else { throw .invalid(path, "\(file.count) bytes is too short for a safetensors header") }
        let headerLength = Int(clamping: UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self)))
        guard headerLength > 1, headerLength <= 100_000_000, 8 + headerLength <= file.count else {
            throw .invalid(path, "the header claims \(headerLength) bytes in a \(file.count)-byte file (truncated, or not safetensors)")
        }
        let header: JSONValue
        do {
            header = try JSONValue.parse(UnsafeRawBufferPointer(start: file.base + 8, count: headerLength))
        } catch {
            throw .invalid(path, "the header is not JSON: \(error)")
        }
        guard case .object(let fields) = header else { throw .invalid(path, "the header is not a JSON object") }
        dataStart = 8 + headerLength
        let dataCount = file.count - dataStart
        var entries: [String: Entry] = [:]
        for (name, value) in fields where name != "__metadata__" {
            guard let dtype = value["dtype"]?.stringValue, let listedShape = value["shape"]?.arrayValue,
                let listedOffsets = value["data_offsets"]?.arrayValue
            else { throw .invalid(path, "tensor \(name) lacks dtype, shape or data_offsets") }
            let shape = listedShape.compactMap(\.intValue), offsets = listedOffsets.compactMap(\.intValue)
            guard shape.count == listedShape.count, offsets.count == 2, listedOffsets.count == 2 else {
                throw .invalid(path, "tensor \(name) has a shape or data_offsets that are not lists of whole numbers")
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataCount else {
                throw .invalid(path, "tensor \(name) lies at bytes \(offsets[0])..<\(offsets[1]) past the data's \(dataCount) bytes (truncated file?)")
            }
            // Sizes from the file, so multiplied without trapping: a damaged header is an error.
            var elements = 1
            for dimension in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                guard dimension >= 0, !overflow else { throw .invalid(path, "tensor \(name) has an impossible shape \(shape)") }
                elements = product
            }
            let width = dtype == "F32" ? 4 : dtype == "F16" || dtype == "BF16" ? 2 : dtype == "I64" ? 8 : 0
            if width > 0 {
                let (bytes, overflow) = elements.multipliedReportingOverflow(by: width)
                guard !overflow, bytes == offsets[1] - offsets[0] else {
                    throw .invalid(path, "tensor \(name): shape \(shape) of \(dtype) does not fit its \(offsets[1] - offsets[0]) bytes")
                }
            }
            entries[name] = Entry(dtype: dtype, shape: shape, start: dataStart + offsets[0], end: dataStart + offsets[1])
        }
        self.entries = entries
    }

    /// A float tensor of exactly `shape`: float32 in place when aligned, else converted. Every
    /// value must be finite: one NaN or infinity makes every embedding that meets it NaN.
    func floats(_ name: String, shape: [Int]) throws(EmbeddingModelError) -> FloatTensor {
        guard let entry = entries[name] else { throw .missingTensor(path, name) }
        guard entry.shape == shape else { throw .shapeMismatch(path, name, expected: shape, got: entry.shape) }
        let tensor = try converted(name, entry)
        let first = ek_first_nonfinite(tensor.pointer, tensor.count)
        if first >= 0 { throw .nonFinite(path, name, element: first, value: tensor.pointer[first]) }
        return tensor
    }

    private func converted(_ name: String, _ entry: Entry) throws(EmbeddingModelError) -> FloatTensor {
        let count = entry.shape.reduce(1, *)
        let source = file.base + entry.start
        switch entry.dtype {
        case "F32":
            if Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0 {
                return FloatTensor(pointer: source.assumingMemoryBound(to: Float.self), count: count, owner: file)
            }
            let owned = OwnedFloats(count: count)
            for index in 0..<count { owned.pointer[index] = source.loadUnaligned(fromByteOffset: index * 4, as: Float.self) }
            return FloatTensor(pointer: owned.pointer, count: count, owner: owned)
        case "F16":
            let owned = OwnedFloats(count: count)
            for index in 0..<count {
                owned.pointer[index] = Float(Float16(bitPattern: source.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
            }
            return FloatTensor(pointer: owned.pointer, count: count, owner: owned)
        case "BF16":
            let owned = OwnedFloats(count: count)
            for index in 0..<count {
                let bits = UInt32(source.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)) << 16
                owned.pointer[index] = Float(bitPattern: bits)
            }
            return FloatTensor(pointer: owned.pointer, count: count, owner: owned)
        default:
            throw .unsupported(path, "tensor \(name) of dtype \(entry.dtype)")
        }
    }
}

/// Floats that live as long as their owner (the mapped file, or an allocation of their own).
struct FloatTensor: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    let count: Int
    let owner: AnyObject
}

/// An allocation freed with its owner (packed weights, converted tensors).
final class OwnedBuffer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>

    init(count: Int) {
        pointer = .allocate(capacity: count)
    }

    deinit { pointer.deallocate() }
}

typealias OwnedFloats = OwnedBuffer<Float>
