import ArgumentParser
import Logging
import Testing
import TestSupport
import WorkerJSON

@testable import WorkerRuntime

@Suite("Configuration from the environment", .defaultPass)
struct ConfigurationTests {
    static let platform: [String: String] = [
        "RUNPOD_WEBHOOK_GET_JOB": "https://api.runpod.ai/v2/ep1/job-take/$ID?gpu=NVIDIA+H100",
        "RUNPOD_WEBHOOK_POST_OUTPUT": "https://api.runpod.ai/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100",
        "RUNPOD_WEBHOOK_POST_STREAM": "https://api.runpod.ai/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100",
        "RUNPOD_WEBHOOK_PING": "https://api.runpod.ai/v2/ep1/ping/$RUNPOD_POD_ID?gpu=NVIDIA+H100",
        "RUNPOD_POD_ID": "w42",
        "RUNPOD_AI_API_KEY": "key",
    ]

    @Test("templates substitute the worker id at start-up, leaving $ID of job URLs for each job")
    func templating() throws {
        let config = try WorkerConfiguration.fromEnvironment(Self.platform)
        let platform = try #require(config.platform)
        #expect(platform.jobTake == "https://api.runpod.ai/v2/ep1/job-take/w42?gpu=NVIDIA+H100")
        #expect(platform.jobDone == "https://api.runpod.ai/v2/ep1/job-done/w42/$ID?gpu=NVIDIA+H100")
        #expect(platform.jobStream == "https://api.runpod.ai/v2/ep1/job-stream/w42/$ID?gpu=NVIDIA+H100")
        #expect(platform.ping == "https://api.runpod.ai/v2/ep1/ping/w42?gpu=NVIDIA+H100")
        #expect(config.heartbeatEnabled)
        #expect(config.workerID == "w42")
    }

    @Test("defaults: one job at a time, 10 s pings, text logs, no platform")
    func defaults() throws {
        let config = try WorkerConfiguration.fromEnvironment([:])
        #expect(config.platform == nil)
        #expect(config.concurrency == 1)
        #expect(config.pingInterval == .seconds(10))
        #expect(config.endpointID == nil)
        #expect(!config.podIDIsSet)
        #expect(!config.heartbeatEnabled)
        #expect(config.podHostname == "unknown")
    }

    @Test("the heartbeat needs the key and the pod id (checklist 26)")
    func heartbeatNeedsKeyAndPod() throws {
        var env = Self.platform
        env["RUNPOD_AI_API_KEY"] = nil
        #expect(try !WorkerConfiguration.fromEnvironment(env).heartbeatEnabled)
        env = Self.platform
        env["RUNPOD_POD_ID"] = nil
        #expect(try !WorkerConfiguration.fromEnvironment(env).heartbeatEnabled)
    }

    @Test(
        "a bad value stops start-up with a message naming the variable",
        arguments: [
            ("RUNPOD_PING_INTERVAL", "-5"), ("RUNPOD_PING_INTERVAL", "ten"), ("WORKER_CONCURRENCY", "0"),
            ("WORKER_CONCURRENCY", "many"), ("RUNPOD_LOG_LEVEL", "LOUD"), ("RUNPOD_WEBHOOK_GET_JOB", "not a url"),
            ("RUNPOD_WEBHOOK_GET_JOB", "ftp://host/job-take/$ID"), ("RUNPOD_WEBHOOK_POST_OUTPUT", "::"),
            ("RUNPOD_WEBHOOK_PING", "http:///nohost"),
        ])
    func badValues(variable: String, value: String) {
        var env = Self.platform
        env[variable] = value
        do {
            _ = try WorkerConfiguration.fromEnvironment(env)
            Issue.record("\(variable)=\(value) was accepted")
        } catch {
            #expect(error.variable == variable)
            #expect(error.description.contains(variable))
            #expect(error.description.contains(value))
        }
    }

    @Test("a missing job-done template is named when the queue worker is configured")
    func missingDoneURL() {
        var env = Self.platform
        env["RUNPOD_WEBHOOK_POST_OUTPUT"] = nil
        #expect(throws: ConfigurationError.self) { try WorkerConfiguration.fromEnvironment(env) }
        do { _ = try WorkerConfiguration.fromEnvironment(env) } catch {
            #expect(error.description.contains("RUNPOD_WEBHOOK_POST_OUTPUT"))
        }
    }

    @Test("limits: delivery retries and grace, idle timeout, connection cap and byte budgets are read and checked")
    func limits() throws {
        let defaults = try WorkerConfiguration.fromEnvironment([:])
        #expect(defaults.timings.resultRetryBudget == .seconds(600))
        #expect(defaults.timings.deliveryGrace == .seconds(20))
        #expect(defaults.limits.idleTimeout == .seconds(30))
        #expect(defaults.limits.maxConnections >= 32)
        #expect(defaults.limits.queuedInputBytes == 256 << 20)
        #expect(defaults.limits.retainedResultBytes == 512 << 20)
        let set = try WorkerConfiguration.fromEnvironment([
            "WORKER_RESULT_RETRY_SECONDS": "120", "WORKER_DELIVERY_GRACE_SECONDS": "5", "HTTP_IDLE_TIMEOUT": "2.5",
            "HTTP_MAX_CONNECTIONS": "100", "QUEUED_INPUT_MB": "64", "RETAINED_RESULTS_MB": "128",
        ])
        #expect(set.timings.resultRetryBudget == .seconds(120))
        #expect(set.timings.deliveryGrace == .seconds(5))
        #expect(set.limits.idleTimeout == .milliseconds(2500))
        #expect(set.limits.maxConnections == 100)
        #expect(set.limits.queuedInputBytes == 64 << 20)
        #expect(set.limits.retainedResultBytes == 128 << 20)
        for (name, bad) in [
            ("WORKER_RESULT_RETRY_SECONDS", "0"), ("HTTP_IDLE_TIMEOUT", "-1"), ("HTTP_MAX_CONNECTIONS", "0"),
            ("QUEUED_INPUT_MB", "lots"), ("RETAINED_RESULTS_MB", "1.5"),
            // Past Int64 milliseconds: refused, not a trap.
            ("HTTP_IDLE_TIMEOUT", "1e20"), ("LOCAL_RESULT_RETENTION", "inf"), ("WORKER_DELIVERY_GRACE_SECONDS", "nan"),
        ] {
            do {
                _ = try WorkerConfiguration.fromEnvironment([name: bad])
                Issue.record("\(name)=\(bad) accepted")
            } catch {
                #expect(error.description.contains(name))
            }
        }
    }

    @Test("log levels accept runpod's names, indices and WARNING")
    func logLevels() throws {
        #expect(try WorkerConfiguration.fromEnvironment(["RUNPOD_LOG_LEVEL": "WARNING"]).logLevel == .warning)
        #expect(try WorkerConfiguration.fromEnvironment(["RUNPOD_LOG_LEVEL": "2"]).logLevel == .debug)
        #expect(try WorkerConfiguration.fromEnvironment(["RUNPOD_DEBUG_LEVEL": "error"]).logLevel == .error)
        #expect(try WorkerConfiguration.fromEnvironment(["WORKER_CONCURRENCY": "8"]).concurrency == 8)
        #expect(try WorkerConfiguration.fromEnvironment(["RUNPOD_PING_INTERVAL": "250"]).pingInterval == .milliseconds(250))
    }

    @Test("mode: --test-input wins, then the platform's variables, then test_input.json (checklist 1, 2)")
    func modes() throws {
        let queue = try WorkerConfiguration.fromEnvironment(Self.platform)
        let local = try WorkerConfiguration.fromEnvironment([:])
        let none = try WorkerArguments.parse([])
        let flag = try WorkerArguments.parse(["--test_input", #"{"input":{}}"#, "--my-own-flag"])
        let dashed = try WorkerArguments.parse(["--test-input", #"{"input":1}"#])
        #expect(WorkerMode.resolve(arguments: none, configuration: queue) == .queue(queue.platform!))
        #expect(WorkerMode.resolve(arguments: none, configuration: local) == .oneShot(testInput: nil))
        #expect(WorkerMode.resolve(arguments: flag, configuration: queue) == .oneShot(testInput: #"{"input":{}}"#))
        #expect(WorkerMode.resolve(arguments: dashed, configuration: local) == .oneShot(testInput: #"{"input":1}"#))
        #expect(flag.unrecognized == ["--my-own-flag"])
    }

    @Test("modes: --local (and --rp_serve_api), PORT for load balancing, precedence")
    func serverModes() throws {
        let args = try WorkerArguments.parse(["--rp_serve_api", "--rp_api_port", "9000", "--rp_api_host", "0.0.0.0"])
        let local = WorkerMode.resolve(arguments: args, configuration: try testConfiguration())
        guard case .server(let server) = local else { Issue.record("not a server: \(local)"); return }
        #expect(server.kind == .local)
        #expect(server.port == 9000)
        #expect(server.host == "0.0.0.0")
        #expect(!server.isLoopback)

        let lb = WorkerMode.resolve(
            arguments: try WorkerArguments.parse([]),
            configuration: try testConfiguration(environment: ["PORT": "8080", "PORT_HEALTH": "8081", "HEALTH_CHECK_PATH": "/ready"]))
        guard case .server(let balanced) = lb else { Issue.record("not a server: \(lb)"); return }
        #expect(balanced.kind == .loadBalancing)
        #expect(balanced.host == "0.0.0.0")
        #expect(balanced.port == 8080)
        #expect(balanced.healthPort == 8081)
        #expect(balanced.healthPath == "/ready")

        // The queue variables win over PORT.
        var env = ConfigurationTests.platform
        env["PORT"] = "8080"
        guard case .queue = WorkerMode.resolve(arguments: try WorkerArguments.parse([]), configuration: try testConfiguration(environment: env))
        else { Issue.record("PORT took over the queue worker"); return }
        #expect(throws: ConfigurationError.self) { try WorkerConfiguration.fromEnvironment(["PORT": "http"]) }
        #expect(throws: ConfigurationError.self) { try WorkerConfiguration.fromEnvironment(["HEALTH_CHECK_PATH": "ping"]) }
    }

    @Test("--local refuses a non-loopback address without an API key; an address is checked, not a prefix")
    func refusesOpenAddress() throws {
        for host in ["0.0.0.0", "127.evil.example", "10.0.0.1", "127.0.0.256", "127.0.0"] {
            #expect(throws: WorkerRuntimeError.self, "\(host)") {
                try WorkerRuntime.resolve(arguments: ["--local", "--host", host], environment: [:])
            }
        }
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] {
            _ = try WorkerRuntime.resolve(arguments: ["--local", "--host", host], environment: [:])
        }
        _ = try WorkerRuntime.resolve(arguments: ["--local", "--host", "0.0.0.0"], environment: ["RUNPOD_API_KEY": "k"])
        _ = try WorkerRuntime.resolve(arguments: ["--local", "--host", "0.0.0.0", "--allow-unauthenticated"], environment: [:])
    }
}
