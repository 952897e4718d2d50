import CEncoderKernels
import Testing
import TestSupport

/// The linear layers' kernels on shapes the model does not have (a last panel of 8 outputs, one
/// of 24, output rows wider than the outputs) and row counts on both sides of every tile and
/// block boundary, which the reference texts reach only by chance.
@Suite("Encoder kernels: linear layers on packed panels", .tags(.heavy), .pass(.heavy))
struct PanelKernelTests {
    /// Deterministic values in [-0.5, 0.5).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) - 0.5
        }
    }

    static let untouched: Float = -12345

    static func run(
        _ kernels: Int32, _ input: [Float], rows: Int, inputs: Int, panels: [Float], bias: [Float], outputs: Int, stride: Int
    ) -> [Float] {
        var output = [Float](repeating: untouched, count: rows * stride)
        output.withUnsafeMutableBufferPointer { buffer in
            ek_linear_panels_on(
                kernels, input, Int32(rows), Int32(inputs), panels, bias, Int32(outputs), buffer.baseAddress, Int32(stride))
        }
        return output
    }

    @Test(
        "AVX-512 and AVX2 give the same sums to the bit, for any number of rows; every kernel is within float32's error bound of a float64 product and writes only its outputs",
        arguments: [(1536, 40), (96, 56), (32, 16)])
    func panels(inputs: Int, outputs: Int) {
        let most = 50
        let stride = outputs + 3
        let weight = Self.values(outputs * inputs, seed: 1)
        let bias = Self.values(outputs, seed: 2)
        let input = Self.values(most * inputs, seed: 3)
        var panels = [Float](repeating: 0, count: ek_panel_floats(Int32(inputs), Int32(outputs)))
        ek_pack_panels(weight, Int32(inputs), Int32(outputs), &panels)

        let kernels = [EK_KERNELS_AVX512, EK_KERNELS_AVX2, EK_KERNELS_OPENBLAS]
        let full = kernels.map {
            Self.run($0, input, rows: most, inputs: inputs, panels: panels, bias: bias, outputs: outputs, stride: stride)
        }
        // Each output in float64, and the sum of its terms' magnitudes.
        var exact = [Double](repeating: 0, count: most * outputs)
        var magnitude = [Double](repeating: 0, count: most * outputs)
        for row in 0..<most {
            for column in 0..<outputs {
                var sum = Double(bias[column])
                var size = abs(sum)
                for k in 0..<inputs {
                    let term = Double(input[row * inputs + k]) * Double(weight[column * inputs + k])
                    sum += term
                    size += abs(term)
                }
                exact[row * outputs + column] = sum
                magnitude[row * outputs + column] = size
            }
        }
        // A dot product of n terms summed in float32 is within n·u/(1 − n·u) of the sum of the
        // terms' magnitudes (u = 2⁻²⁴); n · 2u is above that.
        let bound = Double(inputs + 1) * Double(Float.ulpOfOne)
        for (kernel, output) in zip(kernels, full) {
            var worst = 0.0
            var strays = 0
            for row in 0..<most {
                for column in 0..<stride {
                    let value = output[row * stride + column]
                    if column >= outputs {
                        if value != Self.untouched { strays += 1 }
                    } else {
                        let index = row * outputs + column
                        worst = max(worst, abs(Double(value) - exact[index]) / magnitude[index])
                    }
                }
            }
            #expect(worst <= bound, "kernels \(kernel), \(inputs)→\(outputs): error \(worst) of the magnitudes")
            #expect(strays == 0, "kernels \(kernel) wrote \(strays) values past the outputs")
        }
        #expect(full[0].map(\.bitPattern) == full[1].map(\.bitPattern), "\(inputs)→\(outputs)")
        // Each row's sums do not depend on the rows around it (the tile or block it falls in).
        for rows in [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 17, 18, 19, 25, 37, 49] {
            for (index, kernel) in kernels.prefix(2).enumerated() {
                let part = Self.run(kernel, input, rows: rows, inputs: inputs, panels: panels, bias: bias, outputs: outputs, stride: stride)
                #expect(
                    part.map(\.bitPattern) == full[index].prefix(rows * stride).map(\.bitPattern),
                    "kernels \(kernel), \(inputs)→\(outputs), \(rows) rows")
            }
        }
    }

    @Test("the kernels' names")
    func names() {
        #expect(String(cString: ek_kernels_name(EK_KERNELS_AMX)) == "amx-bf16")
        #expect(String(cString: ek_kernels_name(EK_KERNELS_AVX512)) == "avx512-panels")
        #expect(String(cString: ek_kernels_name(EK_KERNELS_AVX2)) == "avx2-panels")
        #expect(String(cString: ek_kernels_name(EK_KERNELS_OPENBLAS)) == "openblas-sgemm")
    }
}
