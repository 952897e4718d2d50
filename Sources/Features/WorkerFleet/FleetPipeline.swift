import RedisClient
import Synchronization

/// The fleet's calls to Redis, batched as they come: a call made while a round trip is under way
/// goes out in the next one, with every other call made meanwhile, in one pipeline (natural
/// batching: nothing waits for a batch to fill, so a lone call costs what it did). Under load a
/// gateway's submissions and reads, and a worker's results, then cost one write, one read and one
/// wake-up per batch instead of per call. Every call touches the endpoint's slot, so a batch
/// goes to one node of a Cluster.
final class FleetPipeline: Sendable {
    private struct Call {
        let command: RedisCommand
        /// Sent alone when the command is refused with `NOSCRIPT` (the script's text, `EVAL`).
        let fallback: RedisCommand?
        let continuation: CheckedContinuation<Result<RedisValue, any Error>, Never>
    }

    private struct State {
        var waiting: [Call] = []
        var flushing = false
    }

    private let state = Mutex(State())
    let commands: any RedisCommands
    let server: String
    /// A key of the endpoint: where a Cluster sends every batch.
    let routing: [RedisArgument]
    /// Rounds one caller sends for others before a task of its own takes over.
    static let roundsPerCaller = 4

    init(commands: any RedisCommands, routing: String) {
        self.commands = commands
        self.server = commands.configuration.server
        self.routing = [RedisArgument(routing)]
    }

    /// `EVALSHA` of `script`, its text sent only when Redis does not have it.
    func eval(_ script: LuaScript, keys: [String], arguments: [RedisArgument]) async throws -> RedisValue {
        let tail = [RedisArgument(keys.count)] + keys.map { RedisArgument($0) } + arguments
        return try await send(["EVALSHA", RedisArgument(script.sha)] + tail, fallback: ["EVAL", RedisArgument(script.text)] + tail)
    }

    /// One command; an error reply throws (`RedisError.isServerError`).
    func send(_ command: RedisCommand, fallback: RedisCommand? = nil) async throws -> RedisValue {
        let flushes = state.withLock { state -> Bool in
            guard !state.flushing else { return false }
            state.flushing = true
            return true
        }
        // This call leads: its own command goes first, then whatever came meanwhile.
        if flushes { return try await lead(command, fallback: fallback) }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<RedisValue, any Error>, Never>) in
            let lead = state.withLock { state -> Bool in
                state.waiting.append(Call(command: command, fallback: fallback, continuation: continuation))
                guard !state.flushing else { return false }
                state.flushing = true
                return true
            }
            // The leader finished just as this call queued: flush from a task of its own.
            if lead { Task { await self.flushRounds(Self.roundsPerCaller) } }
        }
        return try result.get()
    }

    private func lead(_ command: RedisCommand, fallback: RedisCommand?) async throws -> RedisValue {
        let queued = state.withLock { state -> [Call] in
            defer { state.waiting = [] }
            return state.waiting
        }
        var replies: [RedisValue]
        do {
            replies = try await commands.pipeline([command] + queued.map(\.command), keys: routing)
        } catch {
            for call in queued { call.continuation.resume(returning: .failure(error)) }
            await flushRounds(Self.roundsPerCaller - 1)
            throw error
        }
        for (call, reply) in zip(queued, replies.dropFirst()) {
            let outcome = await result(reply, call.command, call.fallback)
            call.continuation.resume(returning: outcome)
        }
        let own = await result(replies[0], command, fallback)
        await flushRounds(Self.roundsPerCaller - 1)
        return try own.get()
    }

    /// Sends what waits, round after round, until nothing does (or `rounds` are done: a task
    /// takes over, so no caller carries others for long).
    private func flushRounds(_ rounds: Int) async {
        var left = rounds
        while true {
            let batch = state.withLock { state -> [Call]? in
                guard !state.waiting.isEmpty else {
                    state.flushing = false
                    return nil
                }
                defer { state.waiting = [] }
                return state.waiting
            }
            guard let batch else { return }
            if left <= 0 {
                state.withLock { $0.waiting.insert(contentsOf: batch, at: 0) }
                Task { await self.flushRounds(Self.roundsPerCaller) }
                return
            }
            left -= 1
            do {
                let replies = try await commands.pipeline(batch.map(\.command), keys: routing)
                for (call, reply) in zip(batch, replies) {
                    call.continuation.resume(returning: await result(reply, call.command, call.fallback))
                }
            } catch {
                for call in batch { call.continuation.resume(returning: .failure(error)) }
            }
        }
    }

    /// A reply as the call's outcome: an error reply throws, `NOSCRIPT` sends the script's text.
    private func result(_ reply: RedisValue, _ command: RedisCommand, _ fallback: RedisCommand?) async -> Result<RedisValue, any Error> {
        guard case .error(let message) = reply else { return .success(reply) }
        if message.hasPrefix("NOSCRIPT"), let fallback {
            do {
                return .success(try await commands.send(fallback, keys: routing))
            } catch {
                return .failure(error)
            }
        }
        return .failure(RedisError.server(server, command.commandName, message))
    }
}
