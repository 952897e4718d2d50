import Testing
import TestSupport

@testable import WorkerEndpointServer
@testable import WorkerRuntime

/// The endpoint server's own flags and variables, read by its feature (`EndpointServerSettings`).
@Suite("Endpoint server settings: flags, variables and modes", .defaultPass)
struct EndpointServerSettingsTests {
    static let platform = [
        "RUNPOD_WEBHOOK_GET_JOB": "http://127.0.0.1:1/job-take/$ID", "RUNPOD_WEBHOOK_POST_OUTPUT": "http://127.0.0.1:1/job-done/$ID",
        "RUNPOD_WEBHOOK_POST_STREAM": "http://127.0.0.1:1/job-stream/$ID",
    ]

    private func resolve(_ arguments: [String], _ environment: [String: String] = [:]) throws -> WorkerRuntime.Resolved {
        try WorkerRuntime.resolve(arguments: arguments, environment: environment, features: [.endpointServer()])
    }

    private func message(_ arguments: [String], _ environment: [String: String] = [:]) -> String? {
        do {
            _ = try resolve(arguments, environment)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("modes: --local (and --rp_serve_api), PORT for load balancing, precedence")
    func serverModes() throws {
        let local = try resolve(["--rp_serve_api", "--rp_api_port", "9000", "--rp_api_host", "0.0.0.0", "--allow-unauthenticated"])
        let server = try #require(local.mode.settings(as: ServerConfiguration.self))
        #expect(local.mode.isServer)
        #expect(server.kind == .local)
        #expect(server.port == 9000)
        #expect(server.host == "0.0.0.0")
        #expect(!server.isLoopback)

        let lb = try resolve([], ["PORT": "8080", "PORT_HEALTH": "8081", "HEALTH_CHECK_PATH": "/ready"])
        let balanced = try #require(lb.mode.settings(as: ServerConfiguration.self))
        #expect(balanced.kind == .loadBalancing)
        #expect(balanced.host == "0.0.0.0")
        #expect(balanced.port == 8080)
        #expect(balanced.healthPort == 8081)
        #expect(balanced.healthPath == "/ready")

        // The queue variables win over PORT; --local wins over them.
        var env = Self.platform
        env["PORT"] = "8080"
        guard case .queue = try resolve([], env).mode else { Issue.record("PORT took over the queue worker"); return }
        #expect(try resolve(["--local"], env).mode.isServer)
        #expect(try #require(message([], ["PORT": "http"])).contains("PORT"))
        #expect(try #require(message([], ["HEALTH_CHECK_PATH": "ping"])).contains("HEALTH_CHECK_PATH"))
        #expect(try #require(message(["--local", "--port", "-1"])).contains("--port"))
        #expect(try #require(message(["--local", "--port", "65536"])).contains("--port"))
    }

    @Test("--local refuses a non-loopback address without an API key; an address is checked, not a prefix")
    func refusesOpenAddress() throws {
        for host in ["0.0.0.0", "127.evil.example", "10.0.0.1", "127.0.0.256", "127.0.0"] {
            #expect(throws: WorkerRuntimeError.self, "\(host)") { try resolve(["--local", "--host", host]) }
        }
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] {
            _ = try resolve(["--local", "--host", host])
        }
        _ = try resolve(["--local", "--host", "0.0.0.0"], ["RUNPOD_API_KEY": "k"])
        _ = try resolve(["--local", "--host", "0.0.0.0", "--allow-unauthenticated"])
    }

    @Test("--port and --host without --local would be ignored: refused, saying where they apply")
    func serverFlagsAlone() throws {
        #expect(try #require(message(["--port", "9000"])).contains("--port only with --local"))
        #expect(try #require(message(["--host", "0.0.0.0"])).contains("--host only with --local"))
        #expect(try #require(message(["--host", "0.0.0.0"], Self.platform)).contains("--host only with --local"))
        #expect(message(["--local", "--port", "9000"]) == nil)
        #expect(message(["--local", "--port=9000"]) == nil)
        #expect(message(["--rp_serve_api", "--rp_api_port", "9000", "--rp_api_host", "127.0.0.1"]) == nil)
        #expect(message(["--host", "0.0.0.0"], ["PORT": "8080"]) == nil)
        #expect(try #require(message(["--local", "--port"])).contains("missing value for '--port'"))
        #expect(try #require(message(["--local=yes"])).contains("'--local' takes no value"))
    }

    @Test("A mistyped flag is named, with the nearest of every feature's flags, and the list names them all")
    func mistyped() throws {
        let typo = try #require(message(["--lcoal"]))
        #expect(typo.contains("unknown flag --lcoal (did you mean --local?)"))
        #expect(typo.contains("--rp_serve_api") && typo.contains("--allow-unauthenticated") && typo.contains("--test-input"))
        #expect(try #require(message(["--local", "--prot", "9000"])).contains("unknown flag --prot (did you mean --port?)"))
        #expect(try #require(message(["--local", "--port", "8123", "--gateway-only"])).contains("unknown flag --gateway-only"))
    }

    @Test("runpod-python's own spellings still work, --rp_debugger included")
    func runpodSpellings() throws {
        let resolved = try resolve([
            "--rp_serve_api", "--rp_api_port", "9000", "--rp_api_host", "127.0.0.1", "--rp_log_level", "DEBUG", "--rp_api_concurrency", "2",
            "--rp_debugger",
        ])
        #expect(resolved.rpDebugger)
        #expect(resolved.mode.settings(as: ServerConfiguration.self)?.port == 9000)
        #expect(resolved.configuration.concurrency == 2)
    }

    @Test("--help lists the endpoint server's flags after the core's")
    func help() throws {
        do {
            _ = try resolve(["--help"])
            Issue.record("--help did not stop start-up")
        } catch let error as WorkerRuntimeError {
            #expect(error.isHelp)
            #expect(error.description.contains("--local, --rp_serve_api") && error.description.contains("--port, --rp_api_port <value>"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("limits: idle timeout, connection cap and byte budgets are read and checked, naming the variable")
    func limits() throws {
        let defaults = try EndpointServerSettings.limits(EnvironmentReader([:]))
        #expect(defaults.idleTimeout == .seconds(30))
        #expect(defaults.maxConnections >= 32)
        #expect(defaults.queuedInputBytes == 256 << 20)
        #expect(defaults.retainedResultBytes == 512 << 20)
        let set = try EndpointServerSettings.limits(
            EnvironmentReader([
                "HTTP_IDLE_TIMEOUT": "2.5", "HTTP_MAX_CONNECTIONS": "100", "QUEUED_INPUT_MB": "64", "RETAINED_RESULTS_MB": "128",
                "LOCAL_RESULT_RETENTION": "60",
            ]))
        #expect(set.idleTimeout == .milliseconds(2500))
        #expect(set.maxConnections == 100)
        #expect(set.queuedInputBytes == 64 << 20)
        #expect(set.retainedResultBytes == 128 << 20)
        #expect(set.retention == .seconds(60))
        for (name, bad) in [
            ("HTTP_IDLE_TIMEOUT", "-1"), ("HTTP_MAX_CONNECTIONS", "0"), ("QUEUED_INPUT_MB", "lots"), ("RETAINED_RESULTS_MB", "1.5"),
            // Past Int64 milliseconds: refused, not a trap.
            ("HTTP_IDLE_TIMEOUT", "1e20"), ("LOCAL_RESULT_RETENTION", "inf"),
        ] {
            #expect(try #require(message(["--local"], [name: bad])).contains(name), "\(name)=\(bad)")
        }
        // Read into the mode the server runs with.
        let served = try #require(try resolve(["--local"], ["QUEUED_INPUT_MB": "64"]).mode.settings(as: ServerConfiguration.self))
        #expect(served.limits.queuedInputBytes == 64 << 20)
    }

    @Test("RATE_LIMIT_<ROUTE> and RATE_LIMIT_DEFAULT from the environment; a bad one names its variable")
    func rateLimits() throws {
        let limits = try EndpointServerSettings.rateLimits(EnvironmentReader(["RATE_LIMIT_RUN": "100/10s", "RATE_LIMIT_DEFAULT": "5/1s"]))
        #expect(limits.rule(for: .run) == RateLimitRule(limit: 100, window: .seconds(10)))
        #expect(limits.rule(for: .status) == RateLimitRule(limit: 5, window: .seconds(1)))
        #expect(try EndpointServerSettings.rateLimits(EnvironmentReader([:])).isEmpty)
        #expect(try #require(message(["--local"], ["RATE_LIMIT_PURGE_QUEUE": "lots"])).contains("RATE_LIMIT_PURGE_QUEUE"))
    }

    @Test("bad MCP_ALLOWED_* values are refused at start-up, naming the variable")
    func badAccess() throws {
        #expect(try #require(message(["--local"], ["MCP_ALLOWED_HOSTS": "a b"])).contains("MCP_ALLOWED_HOSTS"))
        #expect(try #require(message(["--local"], ["MCP_ALLOWED_ORIGINS": "https://x/y"])).contains("MCP_ALLOWED_ORIGINS"))
        let access = try #require(try resolve(["--local"], ["MCP_ALLOWED_HOSTS": "Tools.Example.com, *.internal"]).mode
            .settings(as: ServerConfiguration.self)).access
        #expect(access.allowedHosts == ["tools.example.com", "*.internal"])
    }

    @Test("found by the probe: misspelt RATE_LIMIT_* names, PORT beside --local, a flag taken for a value; flag values exit 64")
    func probeFindings() throws {
        let misspelt = try #require(message(["--local"], ["RATE_LIMIT_RUN_SYNC": "5/1s"]))
        #expect(misspelt.contains("RATE_LIMIT_RUN_SYNC") && misspelt.contains("RATE_LIMIT_RUNSYNC"))
        #expect(try #require(message(["--local"], ["RATE_LIMIT_run": "5/1s"])).contains("RATE_LIMIT_run"))
        #expect(try #require(message(["--local"], ["PORT": "abc"])).contains("PORT"))
        #expect(try #require(message(["--port", "--local"])).contains("missing value for '--port'"))
        for arguments in [["--local", "--port", "abc"], ["--local", "--port", "99999"], ["--port", "9000"], ["--host", "0.0.0.0"]] {
            do {
                _ = try resolve(arguments)
                Issue.record("\(arguments) accepted")
            } catch let error as WorkerRuntimeError {
                #expect(error.exitCode == 64, "\(arguments): \(error)")
            }
        }
        #expect(try #require(message(["--LOCAL"])).contains("did you mean --local?"))
    }
}

