/// What the typed commands (`get`, `set`, `eval`, ... in `RedisCommands+Typed.swift`) are built
/// on, so they work on one server (`RedisClient`) and on a Redis Cluster (`RedisClusterClient`)
/// alike. Commands of your own go in an extension of this protocol.
///
/// `keys` name the keys a command touches: a cluster sends the command to the master serving
/// their slot, and refuses keys of different slots before sending anything (`RedisError`, naming
/// them); a single server ignores them. Without `keys`, a cluster finds the keys of the commands
/// it knows (`GET`, `SET`, `DEL`, `EVAL`'s numkeys, `XREADGROUP`'s `STREAMS`, ...; see
/// `CommandKeys`) and sends any other command to any master.
public protocol RedisCommands: Sendable {
    /// The settings the client was made with (a cluster's: those of the node its URL names).
    var configuration: RedisConfiguration { get }

    /// Runs one command; an error reply throws (`RedisError.isServerError`).
    func send(_ command: RedisCommand) async throws -> RedisValue

    /// Runs one command that touches `keys` (none: any node will do).
    func send(_ command: RedisCommand, keys: [RedisArgument]) async throws -> RedisValue

    /// Runs `commands` in one round trip, on one connection, in order; each reply in the result
    /// (an error reply as `.error`, answering its command only).
    func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue]

    /// `pipeline(_:)` for commands that together touch `keys` (on a cluster: one slot's).
    func pipeline(_ commands: [RedisCommand], keys: [RedisArgument]) async throws -> [RedisValue]
}
