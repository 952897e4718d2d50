import Dispatch
import Synchronization
import TextEmbedding

/// Gathers the texts of concurrent jobs into shared forward passes, as embedding servers do:
/// 16 concurrent `retrieve` calls become a few passes, not 16. A request finding the model idle
/// starts a pass at once (unless a `window` is given: a 2 ms wait for company was most of what one
/// embed through `/runsync` cost over the model itself); while a pass runs, new requests queue for
/// the next one, which is where batching comes from under load. A
/// pass takes at most `maxTokens` tokens (one request always fits, however large). Passes run on
/// a queue of their own, never on Swift's cooperative pool, and use every core.
final class EmbeddingBatcher: Sendable {
    private struct Request {
        let ids: [[Int32]]
        let tokens: Int
        let continuation: CheckedContinuation<[[Float]], Never>
    }

    private struct State {
        var pending: [Request] = []
        var running = false
    }

    let encoder: SentenceEncoder
    private let window: DispatchTimeInterval?
    private let maxTokens: Int
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "embeddings")
    private let passes = Atomic<Int>(0)

    init(encoder: SentenceEncoder, window: DispatchTimeInterval? = nil, maxTokens: Int = 16_384) {
        self.encoder = encoder
        self.window = window
        self.maxTokens = maxTokens
    }

    /// Forward passes run so far (tests check that concurrent requests share them).
    var passCount: Int { passes.load(ordering: .relaxed) }

    func embed(_ texts: [String]) async -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let ids = texts.map(encoder.tokenize)
        let tokens = ids.reduce(0) { $0 + $1.count }
        return await withCheckedContinuation { continuation in
            let start = state.withLock { state -> Bool in
                state.pending.append(Request(ids: ids, tokens: tokens, continuation: continuation))
                guard !state.running else { return false }
                state.running = true
                return true
            }
            guard start else { return }
            if let window {
                queue.asyncAfter(deadline: .now() + window) { self.drain() }
            } else {
                queue.async { self.drain() }
            }
        }
    }

    /// Runs passes until nothing is pending.
    private func drain() {
        while true {
            let batch = state.withLock { state -> [Request] in
                var taken = 0
                var tokens = 0
                while taken < state.pending.count, taken == 0 || tokens + state.pending[taken].tokens <= maxTokens {
                    tokens += state.pending[taken].tokens
                    taken += 1
                }
                let batch = Array(state.pending.prefix(taken))
                state.pending.removeFirst(taken)
                if batch.isEmpty { state.running = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            passes.add(1, ordering: .relaxed)
            let vectors = encoder.embed(tokenized: batch.flatMap(\.ids))
            var offset = 0
            for request in batch {
                request.continuation.resume(returning: Array(vectors[offset..<offset + request.ids.count]))
                offset += request.ids.count
            }
        }
    }
}
