#if canImport(Glibc)
import Glibc
#endif
import Testing

extension Tag {
    /// Saturates the cores (index builds, crash tests with many writers): runs in a pass of its
    /// own so it neither slows nor is slowed by the timing checks of the default pass.
    @Tag package static var heavy: Self
    /// Measures timing under deliberate load (the heartbeat's cadence): runs alone.
    @Tag package static var load: Self
    /// Starts real servers (redis-server, PostgreSQL clusters, worker processes on them): runs in
    /// a pass of its own, so their start-up work does not stall the default pass's timing checks.
    @Tag package static var servers: Self
    /// Runs the built executables as child processes.
    @Tag package static var process: Self
}

/// Which tests a `swift test` run includes: `TEST_PASS=<tag>` runs the suites marked
/// `.pass(<tag>)`; no `TEST_PASS` runs the rest (`.defaultPass`). `scripts/test.sh` runs every
/// pass and checks that each test ran in exactly one. (Swift Testing's command line cannot select
/// by tag, so the tag is read here.)
package enum TestPass {
    package static let selected: String? = getenv("TEST_PASS").map { String(cString: $0) }
}

extension Trait where Self == ConditionTrait {
    /// Runs only in the pass named after `tag`; tag the suite with `tag` as well.
    package static func pass(_ tag: Tag) -> Self {
        let name = "\(tag)".split(separator: ".").last.map(String.init) ?? "\(tag)"
        return .enabled(if: TestPass.selected == name, "runs in the TEST_PASS=\(name) pass")
    }

    /// Everything else: runs when no pass is selected.
    package static var defaultPass: Self {
        .enabled(if: TestPass.selected == nil, "runs in the default pass")
    }
}
