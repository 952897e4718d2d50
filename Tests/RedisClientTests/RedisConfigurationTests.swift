import RedisClient
import Testing
import TestSupport

@Suite("Redis URLs and settings", .defaultPass)
struct RedisConfigurationTests {
    @Test("redis:// with user, password, port and database")
    func fullURL() throws {
        let configuration = try RedisConfiguration(url: "redis://alice:p%40ss@cache.internal:6380/3")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6380)
        #expect(configuration.user == "alice")
        #expect(configuration.password == "p@ss")
        #expect(configuration.database == 3)
        #expect(!configuration.tls)
    }

    @Test("rediss:// is TLS; a lone credential is a password; IPv6 hosts; insecure=true")
    func variants() throws {
        let tls = try RedisConfiguration(url: "rediss://:secret@example.upstash.io?insecure=true")
        #expect(tls.tls && tls.insecureTLS)
        #expect(tls.user == nil && tls.password == "secret")
        #expect(tls.port == 6379)
        let lone = try RedisConfiguration(url: "redis://secret@localhost")
        #expect(lone.password == "secret" && lone.user == nil)
        let v6 = try RedisConfiguration(url: "redis://[::1]:7000/0")
        #expect(v6.host == "::1" && v6.port == 7000 && v6.server == "[::1]:7000")
    }

    @Test("Malformed URLs and settings name what is wrong", arguments: [
        "http://localhost", "redis://", "redis://host:0", "redis://host:99999", "redis://host/abc",
        "redis://host?insecure=true", "redis://host?colour=blue", "redis://u:p%zz@host", "redis://[::1",
    ])
    func malformed(url: String) {
        #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
    }

    @Test("An error never shows the password")
    func redaction() {
        do {
            _ = try RedisConfiguration(url: "redis://user:hunter2@host:notaport")
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
            #expect("\(error)".contains("port"))
        }
    }

    @Test("The environment: unset is nil, tuning variables are checked")
    func environment() throws {
        #expect(try RedisConfiguration.fromEnvironment([:]) == nil)
        let configuration = try #require(try RedisConfiguration.fromEnvironment([
            "REDIS_URL": "redis://localhost", "REDIS_POOL_SIZE": "3", "REDIS_TIMEOUT": "0.25", "REDIS_CA_FILE": "/ca.pem",
        ]))
        #expect(configuration.poolSize == 3)
        #expect(configuration.commandTimeout == .milliseconds(250))
        #expect(configuration.caFile == "/ca.pem")
        #expect(throws: RedisError.self) { try RedisConfiguration.fromEnvironment(["REDIS_URL": "redis://h", "REDIS_POOL_SIZE": "0"]) }
        #expect(throws: RedisError.self) { try RedisConfiguration.fromEnvironment(["REDIS_URL": "redis://h", "REDIS_TIMEOUT": "soon"]) }
        // Checked without REDIS_URL too: found by the probe (they passed until the URL was added).
        #expect(throws: RedisError.self) { try RedisConfiguration.fromEnvironment(["REDIS_TIMEOUT": "0"]) }
        #expect(throws: RedisError.self) { try RedisConfiguration.fromEnvironment(["REDIS_POOL_SIZE": "0"]) }
    }
}
