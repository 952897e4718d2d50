import ArgumentParser
import Testing
import TestSupport

@testable import WorkerRuntime

@Suite("Flags the worker does not know are errors, naming them", .defaultPass)
struct UnknownArgumentsTests {
    private func message(_ arguments: [String], handlerFlags: [String] = []) -> String? {
        do {
            _ = try WorkerRuntime.resolve(arguments: arguments, environment: [:], options: WorkerOptions(handlerFlags: handlerFlags))
            return nil
        } catch {
            return error.description
        }
    }

    @Test("A mistyped or unknown flag stops start-up, names it, suggests the nearest and lists the known ones")
    func unknown() throws {
        let typo = try #require(message(["--lcoal"]))
        #expect(typo.contains("unknown flag --lcoal (did you mean --local?)"))
        #expect(typo.contains("--rp_serve_api") && typo.contains("--allow-unauthenticated"))
        let port = try #require(message(["--local", "--prot", "9000"]))
        #expect(port.contains("unknown flag --prot (did you mean --port?)"))
        let gateway = try #require(message(["--local", "--port", "8123", "--gateway-only"]))
        #expect(gateway.contains("unknown flag --gateway-only"))
        #expect(try #require(message(["stray"])).contains("unexpected argument 'stray'"))
        #expect(try #require(message(["-x"])).contains("unknown flag -x"))
        #expect(throws: WorkerRuntimeError.self) { try WorkerRuntime.resolve(arguments: ["--lcoal"], environment: [:]) }
        do {
            _ = try WorkerRuntime.resolve(arguments: ["--lcoal"], environment: [:])
        } catch {
            #expect(error.exitCode == 64)
            #expect(!error.isHelp)
        }
    }

    @Test("--port and --host without --local would be ignored: refused, saying where they apply")
    func serverFlagsAlone() throws {
        #expect(try #require(message(["--port", "9000"])).contains("--port only with --local"))
        #expect(try #require(message(["--host", "0.0.0.0"])).contains("--host only with --local"))
        #expect(message(["--local", "--port", "9000"]) == nil)
        #expect(message(["--rp_serve_api", "--rp_api_port", "9000", "--rp_api_host", "127.0.0.1"]) == nil)
        #expect(throws: Never.self) {
            _ = try WorkerRuntime.resolve(arguments: ["--host", "0.0.0.0"], environment: ["PORT": "8080"])
        }
    }

    @Test("runpod-python's own spellings still work, --rp_debugger included")
    func runpodSpellings() throws {
        let resolved = try WorkerRuntime.resolve(
            arguments: ["--rp_serve_api", "--rp_api_port", "9000", "--rp_api_host", "127.0.0.1", "--rp_log_level", "DEBUG",
                "--rp_api_concurrency", "2", "--rp_debugger"],
            environment: [:])
        #expect(resolved.rpDebugger)
        guard case .server(let server) = resolved.mode else {
            Issue.record("not a server: \(resolved.mode)")
            return
        }
        #expect(server.port == 9000)
        #expect(try WorkerRuntime.resolve(arguments: ["--test_input", #"{"input":1}"#], environment: [:]).mode
            == .oneShot(testInput: #"{"input":1}"#))
    }

    @Test("A handler's declared flags, with their values, are left for it")
    func handlerFlags() throws {
        #expect(message(["--model-dir", "/m", "--local"], handlerFlags: ["--model-dir"]) == nil)
        #expect(message(["--model-dir=/m", "--local"], handlerFlags: ["--model-dir"]) == nil)
        let other = try #require(message(["--model-dir", "/m", "--modle"], handlerFlags: ["--model-dir"]))
        #expect(other.contains("unknown flag --modle") && other.contains("this handler's own: --model-dir"))
        #expect(try #require(message(["--model-dir=/m", "stray"], handlerFlags: ["--model-dir"])).contains("unexpected argument"))
    }

    @Test("Every flag the error lists is one the parser accepts")
    func listIsTrue() throws {
        for flag in WorkerArguments.knownFlags + WorkerArguments.runpodFlags where flag != "--help" {
            let valued = ["--test-input", "--test_input", "--log-level", "--rp_log_level", "--host", "--rp_api_host", "--port",
                "--rp_api_port", "--concurrency", "--rp_api_concurrency"].contains(flag)
            let parsed = try WorkerArguments.parse(valued ? [flag, "1"] : [flag])
            #expect(parsed.unrecognized.isEmpty, "\(flag)")
        }
    }
}
