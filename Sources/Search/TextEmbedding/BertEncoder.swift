#if canImport(Glibc)
import Glibc
#endif
import CEncoderKernels
import COpenBLAS

/// The BERT architecture's sizes, from `config.json`.
struct BertConfiguration: Sendable, Equatable {
    var layers: Int
    var heads: Int
    var hidden: Int
    var intermediate: Int
    var layerNormEpsilon: Float
    var maxPositions: Int
    var typeVocabulary: Int
    var vocabulary: Int

    var headSize: Int { hidden / heads }
}

/// BERT's encoder on OpenBLAS: embeddings and LayerNorm, then each layer's multi-head
/// self-attention and feed-forward block (GELU, erf form), each followed by a residual and
/// LayerNorm. The sequences of a batch are packed end to end, without padding: the linear layers
/// run on all of their tokens at once, attention on each sequence alone, so no token attends
/// across sequences and no mask is needed.
struct BertEncoder: Sendable {
    struct Linear: Sendable {
        /// `[out, in]`, as PyTorch stores it: OpenBLAS reads it where the panels are not used.
        let weight: FloatTensor
        let bias: FloatTensor
        let inputs: Int
        let outputs: Int
        /// The weight packed for `ek_linear_panels_on` (AVX-512 or AVX2 machines without AMX).
        let panels: OwnedFloats?
        /// The weight in bfloat16 blocks for `ek_linear_bf16` (AMX machines).
        let tiles: OwnedBuffer<UInt16>?
    }

    struct Norm: Sendable {
        let gamma: FloatTensor
        let beta: FloatTensor
    }

    struct Layer: Sendable {
        let query, key, value, attentionOutput, intermediate, output: Linear
        let attentionNorm, outputNorm: Norm
    }

    let configuration: BertConfiguration
    /// Whether the linear layers run on AMX in bfloat16 (decided when the weights are packed).
    var usesBFloat16: Bool { layers.first?.query.tiles != nil }
    /// The kernels the packed panels run on (`EK_KERNELS_AVX512` or `EK_KERNELS_AVX2`), chosen at
    /// load with the packing: a level a test forces later does not move a model loaded before.
    let panelKernels: Int32
    /// The linear layers' kernels, as logs and stats name them: "amx-bf16", "avx512-panels",
    /// "avx2-panels" or "openblas-sgemm" (GELU, softmax and LayerNorm then portable C).
    var kernelPath: String {
        let kernels: Int32
        if usesBFloat16 {
            kernels = EK_KERNELS_AMX
        } else if layers.first?.query.panels != nil {
            kernels = panelKernels
        } else {
            kernels = EK_KERNELS_OPENBLAS
        }
        return String(cString: ek_kernels_name(kernels))
    }
    let wordEmbeddings, positionEmbeddings, typeEmbeddings: FloatTensor
    let embeddingNorm: Norm
    let layers: [Layer]

    init(weights: SafeTensors, configuration: BertConfiguration) throws(EmbeddingModelError) {
        self.configuration = configuration
        let prefix = weights.entries["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        let hidden = configuration.hidden
        func tensor(_ name: String, _ shape: [Int]) throws(EmbeddingModelError) -> FloatTensor {
            try weights.floats(prefix + name, shape: shape)
        }
        let chosen = ek_model_kernels()
        let amx = chosen == EK_KERNELS_AMX
        // A shape AMX cannot take runs on the AVX-512 panels (every AMX CPU has AVX-512).
        let panelKernels = amx ? EK_KERNELS_AVX512 : chosen
        self.panelKernels = panelKernels
        let packs = panelKernels == EK_KERNELS_AVX512 || panelKernels == EK_KERNELS_AVX2
        func linear(_ name: String, inputs: Int, outputs: Int) throws(EmbeddingModelError) -> Linear {
            let weight = try tensor("\(name).weight", [outputs, inputs])
            var panels: OwnedFloats?
            var tiles: OwnedBuffer<UInt16>?
            if amx, ek_bf16_shape_supported(Int32(inputs), Int32(outputs)) != 0 {
                let packed = OwnedBuffer<UInt16>(count: ek_bf16_panel_halves(Int32(inputs), Int32(outputs)))
                ek_pack_bf16(weight.pointer, Int32(inputs), Int32(outputs), packed.pointer)
                tiles = packed
            } else if packs {
                let packed = OwnedFloats(count: ek_panel_floats(Int32(inputs), Int32(outputs)))
                ek_pack_panels(weight.pointer, Int32(inputs), Int32(outputs), packed.pointer)
                panels = packed
            }
            return Linear(
                weight: weight, bias: try tensor("\(name).bias", [outputs]), inputs: inputs, outputs: outputs, panels: panels, tiles: tiles)
        }
        func norm(_ name: String) throws(EmbeddingModelError) -> Norm {
            Norm(gamma: try tensor("\(name).weight", [hidden]), beta: try tensor("\(name).bias", [hidden]))
        }
        wordEmbeddings = try tensor("embeddings.word_embeddings.weight", [configuration.vocabulary, hidden])
        positionEmbeddings = try tensor("embeddings.position_embeddings.weight", [configuration.maxPositions, hidden])
        typeEmbeddings = try tensor("embeddings.token_type_embeddings.weight", [configuration.typeVocabulary, hidden])
        embeddingNorm = try norm("embeddings.LayerNorm")
        var layers: [Layer] = []
        for index in 0..<configuration.layers {
            let base = "encoder.layer.\(index)"
            layers.append(
                Layer(
                    query: try linear("\(base).attention.self.query", inputs: hidden, outputs: hidden),
                    key: try linear("\(base).attention.self.key", inputs: hidden, outputs: hidden),
                    value: try linear("\(base).attention.self.value", inputs: hidden, outputs: hidden),
                    attentionOutput: try linear("\(base).attention.output.dense", inputs: hidden, outputs: hidden),
                    intermediate: try linear("\(base).intermediate.dense", inputs: hidden, outputs: configuration.intermediate),
                    output: try linear("\(base).output.dense", inputs: configuration.intermediate, outputs: hidden),
                    attentionNorm: try norm("\(base).attention.output.LayerNorm"), outputNorm: try norm("\(base).output.LayerNorm")))
        }
        self.layers = layers
        // The packed copies replace the file's linear weights: let the kernel drop the pages read
        // while packing and while checking that every weight is finite (what is still used,
        // embedding rows and norms, and the linear weights where nothing was packed, faults back
        // in as needed).
        weights.file.release()
    }

    /// The last layer's hidden states of every token of `sequences`, packed: row `t` of a
    /// `[total tokens, hidden]` matrix, the sequences one after another.
    func forward(_ sequences: [[Int32]]) -> [Float] {
        let hidden = configuration.hidden
        let total = sequences.reduce(0) { $0 + $1.count }
        let longest = sequences.map(\.count).max() ?? 0
        var states = [Float](repeating: 0, count: total * hidden)
        guard total > 0 else { return states }
        let memory = (
            attended: ScratchFloats(count: total * hidden), projections: ScratchFloats(count: total * 3 * hidden),
            context: ScratchFloats(count: total * hidden), expanded: ScratchFloats(count: total * configuration.intermediate),
            scores: ScratchFloats(count: longest * longest)
        )
        // The pointers below are the buffers' only uses: keep them mapped until the pass ends.
        defer { withExtendedLifetime(memory) {} }
        let attended = memory.attended.pointer, projections = memory.projections.pointer, context = memory.context.pointer
        let expanded = memory.expanded.pointer, scores = memory.scores.pointer

        states.withUnsafeMutableBufferPointer { states in
            embed(sequences, into: states.baseAddress!)
            for layer in layers {
                attention(
                    layer, sequences: sequences, input: states.baseAddress!, projections: projections, context: context, scores: scores,
                    total: total)
                // Output projection, residual, LayerNorm.
                apply(layer.attentionOutput, rows: total, input: context, output: attended)
                normalize(attended, adding: states.baseAddress!, rows: total, layer.attentionNorm)
                apply(layer.intermediate, rows: total, input: attended, output: expanded)
                gelu(expanded, count: total * configuration.intermediate)
                apply(layer.output, rows: total, input: expanded, output: states.baseAddress!)
                normalize(states.baseAddress!, adding: attended, rows: total, layer.outputNorm)
            }
        }
        return states
    }

    private func embed(_ sequences: [[Int32]], into states: UnsafeMutablePointer<Float>) {
        let hidden = configuration.hidden
        var row = 0
        for sequence in sequences {
            for (position, id) in sequence.enumerated() {
                let target = states + row * hidden
                let word = wordEmbeddings.pointer + Int(id) * hidden
                let place = positionEmbeddings.pointer + position * hidden
                let type = typeEmbeddings.pointer
                for column in 0..<hidden { target[column] = word[column] + place[column] + type[column] }
                row += 1
            }
        }
        normalize(states, adding: nil, rows: row, embeddingNorm)
    }

    /// Multi-head self-attention into `context` (before its output projection).
    private func attention(
        _ layer: Layer, sequences: [[Int32]], input: UnsafePointer<Float>, projections: UnsafeMutablePointer<Float>,
        context: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>, total: Int
    ) {
        let hidden = configuration.hidden
        let width = 3 * hidden
        // Query, key and value side by side in each row: three GEMMs into one strided matrix.
        for (index, projection) in [layer.query, layer.key, layer.value].enumerated() {
            apply(projection, rows: total, input: input, output: projections + index * hidden, outputStride: width)
        }
        let headSize = configuration.headSize
        let scale = 1 / Float(headSize).squareRoot()
        var offset = 0
        for sequence in sequences {
            let length = Int32(sequence.count)
            for head in 0..<configuration.heads {
                let query = projections + offset * width + head * headSize
                let key = query + hidden
                let value = query + 2 * hidden
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, length, length, Int32(headSize), scale, query, Int32(width), key,
                    Int32(width), 0, scores, length)
                softmaxRows(scores, rows: sequence.count, columns: sequence.count)
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, length, Int32(headSize), length, 1, scores, length, value,
                    Int32(width), 0, context + offset * hidden + head * headSize, Int32(hidden))
            }
            offset += sequence.count
        }
    }

    /// `output = input · weightᵀ + bias` for `rows` rows.
    private func apply(
        _ linear: Linear, rows: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, outputStride: Int? = nil
    ) {
        let stride = outputStride ?? linear.outputs
        if let tiles = linear.tiles,
            ek_linear_bf16(
                input, Int32(rows), Int32(linear.inputs), tiles.pointer, linear.bias.pointer, Int32(linear.outputs), output,
                Int32(stride)) != 0
        {
            return
        }
        if let panels = linear.panels {
            ek_linear_panels_on(
                panelKernels, input, Int32(rows), Int32(linear.inputs), panels.pointer, linear.bias.pointer, Int32(linear.outputs),
                output, Int32(stride))
            return
        }
        for row in 0..<rows {
            (output + row * stride).update(from: linear.bias.pointer, count: linear.outputs)
        }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(linear.outputs), Int32(linear.inputs), 1, input,
            Int32(linear.inputs), linear.weight.pointer, Int32(linear.inputs), 1, output, Int32(stride))
    }

    /// `rows += residual` (when given), then LayerNorm, row by row.
    private func normalize(_ rows: UnsafeMutablePointer<Float>, adding residual: UnsafePointer<Float>?, rows count: Int, _ norm: Norm) {
        ek_residual_layernorm(
            rows, residual, Int32(count), Int32(configuration.hidden), norm.gamma.pointer, norm.beta.pointer,
            configuration.layerNormEpsilon)
    }

    private func softmaxRows(_ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        ek_softmax_rows(values, Int32(rows), Int32(columns))
    }

    /// GELU in its exact (erf) form, as BERT's `gelu`.
    private func gelu(_ values: UnsafeMutablePointer<Float>, count: Int) {
        ek_gelu(values, count)
    }
}
