#if canImport(Glibc)
import Glibc
#endif
import CEncoderKernels
import COpenBLAS

/// OpenBLAS picks its kernels from the CPU's model when it loads. Debian 12's 0.3.21 does not
/// know CPUs newer than it (Sapphire Rapids and later) and falls back to its SSE3 ("Prescott")
/// kernels: matrix products 3× slower on an AVX-512 machine. It honours `OPENBLAS_CORETYPE`,
/// but only at load time, before any of our code runs; so a process that relies on BLAS calls
/// `useBestKernels()` first thing in `main`, and re-executes itself once with the core type
/// this CPU can run at its best. Nothing happens when OpenBLAS chose well, or the variable is set.
public enum BLASKernels {
    /// The core type OpenBLAS runs with (`Prescott`, `Haswell`, `SkylakeX`, …).
    public static var current: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// Fallbacks OpenBLAS uses for CPUs it does not know.
    static let weak: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "unknown", "katmai", "northwood"]
    /// AVX2 cores: what 0.3.21 picks for AMD's AVX-512 CPUs (Zen 5 runs as "Haswell"), where its
    /// SkylakeX kernels did attention's matrix products 1.7–3× faster (sequences of 256 to 8 tokens).
    static let avx2Only: Set<String> = ["haswell", "zen"]

    /// Whether OpenBLAS's choice is worth a re-execution with `best`.
    static func shouldSwitch(from current: String, to best: String) -> Bool {
        let current = current.lowercased()
        return weak.contains(current) || (best == "SkylakeX" && avx2Only.contains(current))
    }

    public static func useBestKernels(arguments: [String] = CommandLine.arguments) {
        guard getenv("OPENBLAS_CORETYPE") == nil, let best = ek_best_openblas_core().map({ String(cString: $0) }),
            shouldSwitch(from: current, to: best)
        else { return }
        setenv("OPENBLAS_CORETYPE", best, 1)
        var pointers = arguments.map { strdup($0) }
        pointers.append(nil)
        execv("/proc/self/exe", &pointers)
        // exec failed: carry on with the kernels there are.
        for pointer in pointers { free(pointer) }
    }
}
