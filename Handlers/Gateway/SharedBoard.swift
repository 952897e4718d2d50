import Logging
import RedisClient
import ServiceLifecycle
import WorkerJSON

/// What gateway replicas share (`REDIS_URL` set): which upstreams' breakers are open, and the
/// upstreams' health, probed by one replica per interval. Behind a protocol so the pool is tested
/// without a server.
protocol SharedBoard: Sendable {
    /// This replica opened `upstream`'s breaker: the others keep calls away for `cooldown` too.
    func opened(_ upstream: String, cooldown: Duration) async throws
    /// Its breaker closed (a trial or a probe succeeded): calls may go again everywhere.
    func closed(_ upstream: String) async throws
    /// Whether this replica probes `upstream` this interval (one replica does).
    func claimProbe(_ upstream: String, interval: Duration) async throws -> Bool
    /// A probe's answer (its JSON), kept for the other replicas for a few intervals.
    func health(_ upstream: String, _ answer: JSONValue?, keep: Duration) async throws
    /// Every upstream's shared state: how long it stays open (nil: not open), its last health.
    func read(_ upstreams: [String]) async throws -> [(open: Duration?, health: JSONValue?)]
}

/// `SharedBoard` in Redis: `gateway:{<name>}:open:<upstream>` (expires with the cooldown),
/// `…:probe:<upstream>` (a lock per interval), `…:health:<upstream>`. One hash tag per gateway, so a
/// Redis Cluster keeps its keys in one slot.
struct RedisBoard: SharedBoard {
    let redis: RedisClient
    let prefix: String

    init(redis: RedisClient, gateway: String) {
        self.redis = redis
        self.prefix = "gateway:{\(gateway)}:"
    }

    func opened(_ upstream: String, cooldown: Duration) async throws {
        _ = try await redis.set(prefix + "open:" + upstream, Array("1".utf8), expiresIn: cooldown)
    }

    func closed(_ upstream: String) async throws {
        _ = try await redis.delete([prefix + "open:" + upstream])
    }

    func claimProbe(_ upstream: String, interval: Duration) async throws -> Bool {
        try await redis.set(prefix + "probe:" + upstream, Array("1".utf8), expiresIn: interval, onlyIfAbsent: true)
    }

    func health(_ upstream: String, _ answer: JSONValue?, keep: Duration) async throws {
        let key = prefix + "health:" + upstream
        if let answer {
            _ = try await redis.set(key, try answer.serialized(), expiresIn: keep)
        } else {
            _ = try await redis.delete([key])
        }
    }

    /// One script for all: each upstream's open key's time left and its health.
    func read(_ upstreams: [String]) async throws -> [(open: Duration?, health: JSONValue?)] {
        let keys = upstreams.flatMap { [prefix + "open:" + $0, prefix + "health:" + $0] }
        let reply = try await redis.eval(Self.readScript, keys: keys)
        guard case .array(let values) = reply, values.count == keys.count else { return upstreams.map { _ in (nil, nil) } }
        return upstreams.indices.map { index in
            let left = values[2 * index].integer ?? -2
            let health = values[2 * index + 1].string.flatMap { try? JSONValue.parse(Array($0.utf8)) }
            return (left > 0 ? .milliseconds(left) : nil, health)
        }
    }

    static let readScript = """
        local out = {}
        for i = 1, #KEYS, 2 do
          out[#out + 1] = redis.call('PTTL', KEYS[i])
          out[#out + 1] = redis.call('GET', KEYS[i + 1]) or ''
        end
        return out
        """
}

/// Reads the shared board every half second into the pool; a board that fails leaves each
/// replica on its own state (and says so, once per outage).
struct SharedBoardSync: Service {
    let pool: UpstreamPool
    let board: any SharedBoard
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown { await sync() }
    }

    private func sync() async {
        var failing = false
        let names = pool.upstreams.map(\.name)
        while !Task.isCancelled {
            do {
                let shared = try await board.read(names)
                pool.shared(shared.map { ($0.open, $0.health.flatMap(UpstreamPool.health(from:))) })
                if failing { logger.info("Gateway: the shared breaker state in Redis is back") }
                failing = false
            } catch {
                if !failing { logger.warning("Gateway: the shared breaker state in Redis cannot be read (\(error)); each replica keeps its own until it can") }
                failing = true
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
