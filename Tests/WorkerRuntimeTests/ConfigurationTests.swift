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

    @Test("limits: delivery retries and grace are read and checked")
    func limits() throws {
        let defaults = try WorkerConfiguration.fromEnvironment([:])
        #expect(defaults.timings.resultRetryBudget == .seconds(600))
        #expect(defaults.timings.deliveryGrace == .seconds(20))
        let set = try WorkerConfiguration.fromEnvironment([
            "WORKER_RESULT_RETRY_SECONDS": "120", "WORKER_DELIVERY_GRACE_SECONDS": "5",
        ])
        #expect(set.timings.resultRetryBudget == .seconds(120))
        #expect(set.timings.deliveryGrace == .seconds(5))
        for (name, bad) in [
            ("WORKER_RESULT_RETRY_SECONDS", "0"), ("WORKER_RESULT_RETRY_SECONDS", "-1"),
            // Past Int64 milliseconds: refused, not a trap.
            ("WORKER_RESULT_RETRY_SECONDS", "1e20"), ("WORKER_DELIVERY_GRACE_SECONDS", "inf"), ("WORKER_DELIVERY_GRACE_SECONDS", "nan"),
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
        func mode(_ arguments: WorkerArguments, _ configuration: WorkerConfiguration, _ claims: [ModeClaim] = []) -> WorkerMode {
            WorkerMode.resolve(testInput: arguments.testInput, configuration: configuration, claims: claims)
        }
        #expect(mode(none, queue) == .queue(queue.platform!))
        #expect(mode(none, local) == .oneShot(testInput: nil))
        #expect(mode(flag, queue) == .oneShot(testInput: #"{"input":{}}"#))
        #expect(mode(dashed, local) == .oneShot(testInput: #"{"input":1}"#))
        // A feature's claim: from a flag it beats the queue, from the environment the queue beats it.
        let served = FeatureMode(name: "served")
        #expect(mode(none, queue, [ModeClaim(served, strength: .flag)]) == .feature(served))
        #expect(mode(none, queue, [ModeClaim(served, strength: .environment)]) == .queue(queue.platform!))
        #expect(mode(none, local, [ModeClaim(served, strength: .environment)]) == .feature(served))
        #expect(mode(flag, local, [ModeClaim(served, strength: .exclusiveFlag)]) == .oneShot(testInput: #"{"input":{}}"#))
        let other = FeatureMode(name: "other")
        #expect(
            mode(none, local, [ModeClaim(served, strength: .flag), ModeClaim(other, strength: .exclusiveFlag)]) == .feature(other))
        #expect(mode(none, local, [ModeClaim(served, strength: .flag), ModeClaim(other, strength: .flag)]) == .feature(served))
        #expect(flag.unrecognized == ["--my-own-flag"])
    }
}
