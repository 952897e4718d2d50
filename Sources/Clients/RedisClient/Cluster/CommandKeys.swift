/// Where the keys of a command sit, for the commands the project sends raw (`send([...])`
/// without keys): a cluster routes by them. A command not known here is sent to any master;
/// pass its keys (`send(_:keys:)`) to route it.
package enum CommandKeys {
    /// The command's keys; empty when it has none or is not known here.
    package static func keys(of command: RedisCommand) -> [RedisArgument] {
        guard command.count > 1 else { return [] }
        let name = command.commandName
        if singleKey.contains(name) { return [command[1]] }
        switch name {
        case "DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH":
            return Array(command[1...])
        case "MSET", "MSETNX":
            return stride(from: 1, to: command.count, by: 2).map { command[$0] }
        case "RENAME", "RENAMENX", "COPY", "RPOPLPUSH", "LMOVE", "SMOVE":
            return Array(command[1..<min(3, command.count)])
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            // EVAL script numkeys key... arg...
            guard command.count > 3, let count = Int(String(decoding: command[2].bytes, as: UTF8.self)), count > 0,
                count <= command.count - 3
            else { return [] }
            return Array(command[3..<(3 + count)])
        case "XREAD":
            return streamKeys(command, optionsFrom: 1)
        case "XREADGROUP":
            // XREADGROUP GROUP group consumer [options] STREAMS ...
            return streamKeys(command, optionsFrom: 4)
        case "XGROUP", "XINFO":
            // XGROUP CREATE key ..., XINFO STREAM key: the key follows the subcommand.
            return command.count > 2 ? [command[2]] : []
        default:
            return []
        }
    }

    /// The keys after `STREAMS`: as many as the ids that follow them. The options before it are
    /// stepped over as Redis reads them, so a group or consumer named "streams" is no keyword.
    private static func streamKeys(_ command: RedisCommand, optionsFrom start: Int) -> [RedisArgument] {
        var index = start
        while index < command.count {
            let option = command[index]
            if equalsIgnoringCase(option, "STREAMS") {
                let rest = command.count - index - 1
                return Array(command[(index + 1)..<(index + 1 + rest / 2)])
            }
            index += equalsIgnoringCase(option, "COUNT") || equalsIgnoringCase(option, "BLOCK") ? 2 : 1
        }
        return []
    }

    /// Commands whose one key is their first argument.
    private static let singleKey: Set<String> = [
        "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL", "GETEX", "APPEND", "STRLEN",
        "INCR", "INCRBY", "INCRBYFLOAT", "DECR", "DECRBY",
        "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "TTL", "PTTL", "TYPE", "DUMP", "RESTORE",
        "HSET", "HSETNX", "HGET", "HMGET", "HMSET", "HGETALL", "HDEL", "HEXISTS", "HINCRBY", "HINCRBYFLOAT", "HKEYS",
        "HVALS", "HLEN",
        "LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "LLEN", "LREM", "LTRIM", "LINDEX",
        "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SCARD",
        "ZADD", "ZREM", "ZRANGE", "ZRANGEBYSCORE", "ZSCORE", "ZCARD", "ZINCRBY", "ZPOPMIN", "ZREMRANGEBYSCORE",
        "XADD", "XACK", "XAUTOCLAIM", "XCLAIM", "XPENDING", "XLEN", "XRANGE", "XREVRANGE", "XDEL", "XTRIM", "XSETID",
        "SPUBLISH",
    ]

    private static func equalsIgnoringCase(_ argument: RedisArgument, _ word: String) -> Bool {
        argument.bytes.count == word.utf8.count
            && zip(argument.bytes, word.utf8).allSatisfy { ($0 >= 97 && $0 <= 122 ? $0 - 32 : $0) == $1 }
    }
}
