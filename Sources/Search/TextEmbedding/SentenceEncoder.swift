#if canImport(Glibc)
import Glibc
#endif
import COpenBLAS
import Dispatch
import WorkerJSON

/// A sentence-transformers model (a BERT encoder, pooling, optional normalisation) loaded from
/// its directory as published, run in process on OpenBLAS: no Python, no GPU, no service.
///
/// ```swift
/// let encoder = try SentenceEncoder(directory: "/models/all-MiniLM-L6-v2")
/// let vectors = encoder.embed(["car", "automobile"])   // [[Float]] of encoder.dimension each
/// ```
public struct SentenceEncoder: Sendable {
    public enum Pooling: String, Sendable {
        case mean, cls, max
    }

    /// The directory's name (`all-MiniLM-L6-v2`): what a namespace records as its embedder.
    public let name: String
    public let dimension: Int
    /// Word pieces per text, `[CLS]` and `[SEP]` included; longer texts are truncated.
    public let maxSequenceLength: Int
    public let pooling: Pooling
    public let normalizes: Bool
    /// The weights' size in bytes.
    public let weightBytes: Int
    /// The kernels the linear layers run on, chosen from the CPU at load: "amx-bf16",
    /// "avx512-panels", "avx2-panels" or "openblas-sgemm" (`BLASKernels.current` names OpenBLAS's
    /// own, which attention uses).
    public var kernelPath: String { encoder.kernelPath }
    let tokenizer: WordPieceTokenizer
    let encoder: BertEncoder
    let lowercaseInput: Bool
    /// Tokens per forward pass: bounds the activations' memory (about 40 kB per token here).
    static let tokensPerPass = 2048

    public init(directory: String) throws(EmbeddingModelError) {
        let directory = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let file = { (name: String) in "\(directory)/\(name)" }
        let config = try Self.json(file("config.json"))
        let modelType = config["model_type"]?.stringValue ?? "?"
        guard modelType == "bert" else { throw .unsupported(file("config.json"), "model_type \(modelType)") }
        let activation = config["hidden_act"]?.stringValue ?? "gelu"
        guard activation == "gelu" else { throw .unsupported(file("config.json"), "hidden_act \(activation)") }
        let positions = config["position_embedding_type"]?.stringValue ?? "absolute"
        guard positions == "absolute" else { throw .unsupported(file("config.json"), "position_embedding_type \(positions)") }
        // A value given must be right: a default stands in only for a key that is absent (or null).
        func size(_ key: String, default fallback: Int? = nil, atLeast minimum: Int = 1) throws(EmbeddingModelError) -> Int {
            let given = Self.given(config[key])
            let wanted: Int? = given.map { $0.intValue } ?? fallback
            guard let number = wanted, number >= minimum else {
                let found = given.map { " (it is \(Self.quoted($0)))" } ?? " (it is missing)"
                throw .invalid(file("config.json"), "\(key) must be a whole number of at least \(minimum)\(found)")
            }
            return number
        }
        let configuration = BertConfiguration(
            layers: try size("num_hidden_layers"), heads: try size("num_attention_heads"), hidden: try size("hidden_size"),
            intermediate: try size("intermediate_size"), layerNormEpsilon: try Self.epsilon(config, file("config.json")),
            // [CLS], one word piece and [SEP] at least.
            maxPositions: try size("max_position_embeddings", default: 512, atLeast: 3),
            typeVocabulary: try size("type_vocab_size", default: 2), vocabulary: try size("vocab_size"))
        guard configuration.hidden % configuration.heads == 0 else {
            throw .invalid(file("config.json"), "hidden_size \(configuration.hidden) is not a multiple of num_attention_heads")
        }

        // The pipeline: a Transformer, a Pooling, optionally Normalize; nothing else.
        let modules = try Self.json(file("modules.json"))
        guard let list = modules.arrayValue else { throw .invalid(file("modules.json"), "it must be a list of modules") }
        var poolingPath: String?
        var normalizes = false
        for module in list {
            let type = module["type"]?.stringValue ?? "?"
            switch type.split(separator: ".").last.map(String.init) ?? type {
            case "Transformer": continue
            case "Pooling": poolingPath = module["path"]?.stringValue ?? "1_Pooling"
            case "Normalize": normalizes = true
            default: throw .unsupported(file("modules.json"), "module \(type)")
            }
        }
        guard let poolingPath else { throw .invalid(file("modules.json"), "it lists no Pooling module") }
        let poolingConfig = try Self.json(file("\(poolingPath)/config.json"))
        if let width = Self.given(poolingConfig["word_embedding_dimension"]), width.intValue != configuration.hidden {
            throw .invalid(
                file("\(poolingPath)/config.json"),
                "word_embedding_dimension \(Self.quoted(width)) does not match config.json's hidden_size \(configuration.hidden)")
        }
        if poolingConfig["pooling_mode_mean_tokens"]?.boolValue == true {
            pooling = .mean
        } else if poolingConfig["pooling_mode_cls_token"]?.boolValue == true {
            pooling = .cls
        } else if poolingConfig["pooling_mode_max_tokens"]?.boolValue == true {
            pooling = .max
        } else {
            throw .unsupported(file("\(poolingPath)/config.json"), "a pooling mode other than mean, CLS or max")
        }
        self.normalizes = normalizes

        // Optional files: absent means the defaults, present means read (a damaged one is an error).
        let sentenceConfig = try Self.json(file("sentence_bert_config.json"), optional: true) ?? [:]
        let sequenceLength = Self.given(sentenceConfig["max_seq_length"])
        let givenLength: Int? = sequenceLength.map { $0.intValue } ?? 512
        guard let length = givenLength, length >= 3 else {
            throw .invalid(
                file("sentence_bert_config.json"),
                "max_seq_length must be a whole number of at least 3 (it is \(sequenceLength.map(Self.quoted) ?? "?"))")
        }
        maxSequenceLength = min(length, configuration.maxPositions)
        lowercaseInput = sentenceConfig["do_lower_case"]?.boolValue ?? false
        let tokenizerConfig = try Self.json(file("tokenizer_config.json"), optional: true) ?? [:]
        // Exactly the model's vocabulary: a shorter file still loads and tokenizes, into the wrong
        // ids, and its vectors would silently mix with good ones.
        let vocabulary = WordPieceTokenizer.vocabulary(try Self.text(file("vocab.txt")))
        guard vocabulary.ids == configuration.vocabulary else {
            throw .vocabularySize(file("vocab.txt"), lines: vocabulary.ids, configured: configuration.vocabulary)
        }
        tokenizer = try WordPieceTokenizer(
            vocabulary: vocabulary.tokens, lowercase: tokenizerConfig["do_lower_case"]?.boolValue ?? true,
            stripAccents: tokenizerConfig["strip_accents"]?.boolValue,
            splitChinese: tokenizerConfig["tokenize_chinese_chars"]?.boolValue ?? true)

        let weights = try SafeTensors(path: file("model.safetensors"))
        encoder = try BertEncoder(weights: weights, configuration: configuration)
        weightBytes = weights.file.count
        dimension = configuration.hidden
        name = directory.split(separator: "/").last.map(String.init) ?? "model"
        BLASThreads.pinToOne()
        try probe(directory)
    }

    /// The text embedded once at load.
    static let probeText = "A short sentence to check the model at start-up."

    /// One short text through the whole model: its vector must be finite, and of unit length when
    /// the model normalises (else not zero). Damage no check of the files sees (values that
    /// overflow in the forward pass, a configuration that does not fit the weights) is found here,
    /// before the worker reports ready, instead of in every job.
    func probe(_ directory: String) throws(EmbeddingModelError) {
        let vector = pooled([tokenize(Self.probeText)])[0]
        guard vector.count == dimension, vector.allSatisfy(\.isFinite) else {
            throw .failedProbe(directory, "has NaN or infinite components")
        }
        let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        if normalizes ? abs(norm - 1) > 1e-3 : !(norm > 0) {
            throw .failedProbe(directory, "has length \(norm), not \(normalizes ? "1" : "above 0")")
        }
    }

    /// Token ids as the model sees them (`[CLS] … [SEP]`, truncated at `maxSequenceLength`).
    public func tokenize(_ text: String) -> [Int32] {
        tokenizer.encode(lowercaseInput ? text.lowercased() : text, maxLength: maxSequenceLength)
    }

    /// One vector per text, in order. Texts are sorted by length and packed into passes of at
    /// most `tokensPerPass` tokens, which run on up to `threads` threads at once (BLAS itself
    /// single-threaded underneath: this owns the threading).
    public func embed(_ texts: [String], threads: Int = SentenceEncoder.cores) -> [[Float]] {
        embed(tokenized: texts.map(tokenize), threads: threads)
    }

    /// The same for texts already tokenized (`tokenize`), one vector per id list.
    public func embed(tokenized ids: [[Int32]], threads: Int = SentenceEncoder.cores) -> [[Float]] {
        let order = ids.indices.sorted { ids[$0].count > ids[$1].count }
        // Enough passes to give every thread work, none over the activation budget.
        let total = ids.reduce(0) { $0 + $1.count }
        let perPass = max(1, min(Self.tokensPerPass, (total + max(1, threads) - 1) / max(1, threads)))
        var passes: [[Int]] = []
        var current: [Int] = []
        var tokens = 0
        for index in order {
            if !current.isEmpty, tokens + ids[index].count > perPass {
                passes.append(current)
                current = []
                tokens = 0
            }
            current.append(index)
            tokens += ids[index].count
        }
        if !current.isEmpty { passes.append(current) }
        let passList = passes
        let results = UnsafeMutableBufferPointer<[Float]>.allocate(capacity: ids.count)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        let box = ResultsBox(results)
        let next = NextIndex()
        let workers = max(1, min(threads, passList.count))
        let run: @Sendable (Int) -> Void = { _ in
            while let pass = next.take(below: passList.count) {
                let members = passList[pass]
                let vectors = self.pooled(members.map { ids[$0] })
                for (slot, index) in members.enumerated() { box.buffer[index] = vectors[slot] }
            }
        }
        if workers == 1 {
            run(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers, execute: run)
        }
        return Array(results)
    }

    /// One forward pass, pooled and normalised per sequence.
    func pooled(_ sequences: [[Int32]]) -> [[Float]] {
        let states = encoder.forward(sequences)
        let hidden = dimension
        var vectors: [[Float]] = []
        vectors.reserveCapacity(sequences.count)
        var row = 0
        for sequence in sequences {
            var vector = [Float](repeating: 0, count: hidden)
            switch pooling {
            case .mean:
                for token in 0..<sequence.count {
                    let base = (row + token) * hidden
                    for column in 0..<hidden { vector[column] += states[base + column] }
                }
                let inverse = 1 / Float(max(1, sequence.count))
                for column in 0..<hidden { vector[column] *= inverse }
            case .cls:
                for column in 0..<hidden { vector[column] = states[row * hidden + column] }
            case .max:
                for column in 0..<hidden { vector[column] = -.infinity }
                for token in 0..<sequence.count {
                    let base = (row + token) * hidden
                    for column in 0..<hidden { vector[column] = Swift.max(vector[column], states[base + column]) }
                }
            }
            if normalizes {
                var squares: Float = 0
                for value in vector { squares += value * value }
                // sentence-transformers divides by max(norm, 1e-12).
                let scale = 1 / Swift.max(squares.squareRoot(), 1e-12)
                for column in 0..<hidden { vector[column] *= scale }
            }
            vectors.append(vector)
            row += sequence.count
        }
        return vectors
    }

    public static let cores: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    static func text(_ path: String) throws(EmbeddingModelError) -> String {
        let file = try MappedFile(path: path)
        return String(decoding: UnsafeRawBufferPointer(start: file.base, count: file.count), as: UTF8.self)
    }

    static func json(_ path: String) throws(EmbeddingModelError) -> JSONValue {
        let file = try MappedFile(path: path)
        do {
            return try JSONValue.parse(UnsafeRawBufferPointer(start: file.base, count: file.count))
        } catch {
            throw .invalid(path, "\(error)")
        }
    }

    /// An optional file: nil when it does not exist, an error when it exists but cannot be used.
    static func json(_ path: String, optional: Bool) throws(EmbeddingModelError) -> JSONValue? {
        do throws(EmbeddingModelError) {
            return try json(path)
        } catch {
            if optional, error == .missingFile(path) { return .none }
            throw error
        }
    }

    /// A value the configuration gives: nil when the key is absent or null.
    static func given(_ value: JSONValue?) -> JSONValue? {
        guard let value, value != .null else { return .none }
        return value
    }

    static func quoted(_ value: JSONValue) -> String {
        (try? value.jsonString()) ?? "not JSON"
    }

    /// `layer_norm_eps`: LayerNorm divides by sqrt(variance + epsilon), so it must be a positive
    /// finite float32 (zero or negative gives NaN for some rows, and then for every text).
    static func epsilon(_ config: JSONValue, _ path: String) throws(EmbeddingModelError) -> Float {
        guard let raw = Self.given(config["layer_norm_eps"]) else { return 1e-12 }
        guard let number = raw.doubleValue else {
            throw .invalid(path, "layer_norm_eps must be a positive finite number, such as BERT's 1e-12 (it is \(quoted(raw)))")
        }
        let value = Float(number)
        guard value.isFinite, value > 0 else {
            throw .invalid(path, "layer_norm_eps must be a positive finite float32, such as BERT's 1e-12 (it is \(quoted(raw)))")
        }
        return value
    }
}

/// Slots of the caller's result buffer; each pass writes its own texts' slots only.
private final class ResultsBox: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<[Float]>
    init(_ buffer: UnsafeMutableBufferPointer<[Float]>) { self.buffer = buffer }
}

/// Hands out pass numbers to the threads.
private final class NextIndex: @unchecked Sendable {
    private var next = 0
    private var lock = pthread_mutex_t()

    init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }

    func take(below limit: Int) -> Int? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard next < limit else { return nil }
        next += 1
        return next - 1
    }
}

/// The encoder owns the threading: BLAS runs single-threaded inside each pass.
enum BLASThreads {
    private static let once: Void = { openblas_set_num_threads(1) }()
    static func pinToOne() { _ = once }
}
