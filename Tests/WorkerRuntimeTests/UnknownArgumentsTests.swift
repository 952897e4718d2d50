import ArgumentParser
import Testing
import TestSupport

@testable import WorkerRuntime

@Suite("Flags nobody declares are errors, naming them; features' flags reach their feature", .defaultPass)
struct UnknownArgumentsTests {
    /// A feature with one flag of each kind, standing for the endpoint server or MCP.
    static let serve = FeatureFlag(["--serve", "--rp_serve"], help: "Serve.")
    static let level = FeatureFlag(["--level"], takesValue: true, help: "A level.")
    static let probe = WorkerFeature(
        name: "probe", flags: [serve, level],
        configure: { setup throws(ConfigurationError) in
            let level = try setup.flags.whole("--level", in: 1...9, expected: "a level from 1 to 9")
            guard setup.flags.isSet("--serve") else { return FeatureConfiguration(settings: ProbeSettings(level: level)) }
            return FeatureConfiguration(
                settings: ProbeSettings(level: level), mode: ModeClaim(FeatureMode(name: "probe"), strength: .flag))
        })

    struct ProbeSettings: Sendable, Equatable {
        var level: Int?
    }

    private func resolve(_ arguments: [String], handlerFlags: [String] = []) throws(WorkerRuntimeError) -> WorkerRuntime.Resolved {
        try WorkerRuntime.resolve(arguments: arguments, environment: [:], options: WorkerOptions(handlerFlags: handlerFlags), features: [Self.probe])
    }

    private func message(_ arguments: [String], handlerFlags: [String] = []) -> String? {
        do {
            _ = try resolve(arguments, handlerFlags: handlerFlags)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("A mistyped or unknown flag stops start-up, names it, suggests the nearest and lists the known ones")
    func unknown() throws {
        let typo = try #require(message(["--srve"]))
        #expect(typo.contains("unknown flag --srve (did you mean --serve?)"))
        #expect(typo.contains("--rp_serve") && typo.contains("--level") && typo.contains("--test-input"))
        #expect(try #require(message(["--serve", "--levl", "3"])).contains("unknown flag --levl (did you mean --level?)"))
        #expect(try #require(message(["stray"])).contains("unexpected argument 'stray'"))
        #expect(try #require(message(["-x"])).contains("unknown flag -x"))
        do {
            _ = try resolve(["--srve"])
            Issue.record("accepted")
        } catch {
            #expect(error.exitCode == 64)
            #expect(!error.isHelp)
        }
    }

    @Test("A feature's flags and values reach it, in every spelling; its claim picks the mode; bad values name the flag")
    func featureFlags() throws {
        let served = try resolve(["--rp_serve", "--level", "4"])
        #expect(served.mode == .feature(FeatureMode(name: "probe")))
        #expect(served.settings[ProbeSettings.self] == ProbeSettings(level: 4))
        #expect(try resolve(["--level=7"]).settings[ProbeSettings.self] == ProbeSettings(level: 7))
        #expect(try resolve([]).mode == .oneShot(testInput: nil))
        #expect(try #require(message(["--level", "12"])).contains("--level"))
        #expect(try #require(message(["--level"])).contains("missing value for '--level'"))
        #expect(try #require(message(["--serve=1"])).contains("'--serve' takes no value"))
    }

    @Test("The endpoint server's and MCP's flags, without their features, say which feature to add")
    func missingFeature() throws {
        for flag in ["--local", "--rp_serve_api", "--port", "--host", "--mcp"] {
            let text = try #require(message([flag] + (["--port", "--host"].contains(flag) ? ["1"] : [])), "\(flag)")
            #expect(text.contains("features:"), "\(flag): \(text)")
        }
    }

    @Test("A handler's declared flags, with their values, are left for it")
    func handlerFlags() throws {
        #expect(message(["--model-dir", "/m", "--serve"], handlerFlags: ["--model-dir"]) == nil)
        #expect(message(["--model-dir=/m", "--serve"], handlerFlags: ["--model-dir"]) == nil)
        let other = try #require(message(["--model-dir", "/m", "--modle"], handlerFlags: ["--model-dir"]))
        #expect(other.contains("unknown flag --modle") && other.contains("this handler's own: --model-dir"))
        #expect(try #require(message(["--model-dir=/m", "stray"], handlerFlags: ["--model-dir"])).contains("unexpected argument"))
    }

    @Test("runpod-python's core spellings still work")
    func runpodSpellings() throws {
        let resolved = try resolve(["--rp_log_level", "DEBUG", "--rp_api_concurrency", "2", "--rp_debugger"])
        #expect(resolved.rpDebugger)
        #expect(resolved.configuration.concurrency == 2)
        #expect(try resolve(["--test_input", #"{"input":1}"#]).mode == .oneShot(testInput: #"{"input":1}"#))
    }

    @Test("Every flag the error lists is one the parser accepts")
    func listIsTrue() throws {
        for flag in WorkerArguments.knownFlags + WorkerArguments.runpodFlags where flag != "--help" {
            let valued = ["--test-input", "--test_input", "--log-level", "--rp_log_level", "--concurrency", "--rp_api_concurrency"]
                .contains(flag)
            let parsed = try WorkerArguments.parse(valued ? [flag, "1"] : [flag])
            #expect(parsed.unrecognized.isEmpty, "\(flag)")
        }
    }
}
