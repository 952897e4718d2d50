import Foundation

/// What this process holds, read from /proc: for tests that bound resources.
package enum ProcessGauges {
    /// Resident memory in bytes.
    package static var residentBytes: Int { residentBytes(of: "self") }

    /// Resident memory of process `pid` ("self" for this one), in bytes.
    package static func residentBytes(of pid: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// Open file descriptors.
    package static var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }

    /// Open file descriptors on files under `path` (immune to what other tests running at the same time hold).
    package static func descriptors(under path: String) -> Int {
        let directory = "/proc/self/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { entry in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + entry))?.hasPrefix(path) == true
        }.count
    }
}
