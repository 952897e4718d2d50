import Synchronization
import WorkerJSON

/// The leads this process is running, by id: a second request for a lead already running here
/// waits for the same run instead of starting another (the store's lease keeps other processes
/// out; this keeps a process from racing itself).
final class InFlightLeads: Sendable {
    private let tasks = Mutex<[String: Task<JSONValue, any Error>]>([:])

    /// `body`'s result for `leadID`, started now or joined. A cancelled caller cancels the run
    /// (which hands the lead back to the store at once).
    func run(_ leadID: String, _ body: @escaping @Sendable () async throws -> JSONValue) async throws -> JSONValue {
        let task = start(leadID, body)
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Starts `body` for `leadID` unless it already runs; returns its task.
    @discardableResult
    func start(_ leadID: String, _ body: @escaping @Sendable () async throws -> JSONValue) -> Task<JSONValue, any Error> {
        tasks.withLock { tasks in
            if let running = tasks[leadID] { return running }
            // The task removes itself under the same lock, so it cannot do so before it is added.
            let task = Task {
                defer { _ = self.tasks.withLock { $0.removeValue(forKey: leadID) } }
                return try await body()
            }
            tasks[leadID] = task
            return task
        }
    }

    func contains(_ leadID: String) -> Bool { tasks.withLock { $0[leadID] != nil } }
    var count: Int { tasks.withLock { $0.count } }

    /// Cancels every run and waits for them to hand their leads back.
    func cancelAll() async {
        let running = tasks.withLock { Array($0.values) }
        for task in running { task.cancel() }
        for task in running { _ = try? await task.value }
    }
}
