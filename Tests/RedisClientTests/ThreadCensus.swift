import Foundation

/// This process's threads, read from /proc: how many there are, and how many are blocked in
/// poll(2) or select(2), where a client that parks a thread per waiting call keeps them.
enum ThreadCensus {
    #if arch(x86_64)
    /// poll, select, pselect6, ppoll.
    private static let pollCalls: Set<Int> = [7, 23, 270, 271]
    #elseif arch(arm64)
    /// pselect6, ppoll (arm64 has no poll or select).
    private static let pollCalls: Set<Int> = [72, 73]
    #else
    private static let pollCalls: Set<Int> = []
    #endif

    static var threads: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    }

    /// Threads blocked in poll, ppoll, select or pselect now; nil where the kernel does not say
    /// (another architecture, or /proc/self/task/*/syscall unreadable).
    static func inPoll() -> Int? {
        guard !pollCalls.isEmpty, let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return nil }
        var read = false
        var count = 0
        for task in tasks {
            // "<number> <arguments…>" while blocked in a system call, "running" otherwise.
            guard let text = try? String(contentsOfFile: "/proc/self/task/\(task)/syscall", encoding: .utf8) else { continue }
            read = true
            if let number = Int(text.split(separator: " ").first ?? ""), pollCalls.contains(number) { count += 1 }
        }
        return read ? count : nil
    }

    /// The most threads seen in poll over `samples` looks `interval` apart (nil as `inPoll`).
    static func mostInPoll(samples: Int, interval: Duration) async throws -> Int? {
        var most: Int?
        for _ in 0..<samples {
            if let now = inPoll() { most = max(most ?? 0, now) }
            try await Task.sleep(for: interval)
        }
        return most
    }
}
