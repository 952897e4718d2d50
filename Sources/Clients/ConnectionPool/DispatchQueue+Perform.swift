import Dispatch

extension DispatchQueue {
    /// Runs blocking `body` on this queue (a connection's own, off Swift's cooperative pool) and
    /// returns its result to the waiting task.
    package func perform<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        // Resumed exactly once below, on every path: the unchecked kind saves an allocation per call.
        try await withUnsafeThrowingContinuation { continuation in
            self.async {
                do {
                    continuation.resume(returning: try body())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}
