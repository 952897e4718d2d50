#if canImport(Glibc)
import Glibc
#endif
import Testing

extension Tag {
    /// Saturates every core (many concurrent jobs, CPU-bound handlers, index builds): runs in a
    /// pass of its own so it neither disturbs nor is disturbed by timing checks elsewhere.
    @Tag package static var heavy: Self
    /// Runs the built executables as child processes.
    @Tag package static var process: Self
}

/// Which tagged tests a `swift test` run includes: `TEST_PASS=heavy` runs only the `.heavy` ones,
/// any other value (or none) everything else. `scripts/test.sh` runs both passes; Swift Testing's
/// command line cannot select by tag, so the tag is read here.
package enum TestPass {
    package static let selected: String = {
        guard let raw = getenv("TEST_PASS") else { return "default" }
        return String(cString: raw)
    }()

    /// The condition for a suite or test tagged `tag`.
    package static func runs(_ tag: Tag) -> Bool {
        tag == .heavy ? selected == "heavy" : selected != "heavy"
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs in the pass that selects `tag` (see `TestPass`); tag the suite with `tag` as well.
    package static func pass(_ tag: Tag) -> Self {
        .enabled(if: TestPass.runs(tag), "runs in the TEST_PASS=\(tag == .heavy ? "heavy" : "default") pass")
    }

    /// Untagged suites: skipped in the heavy pass, so each test runs in exactly one pass.
    package static var defaultPass: Self {
        .enabled(if: TestPass.selected != "heavy", "runs in the default pass")
    }
}
