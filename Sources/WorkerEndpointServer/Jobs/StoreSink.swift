import WorkerJSON
import WorkerRuntime

/// Where the runner's output goes in the endpoint server: into the job store.
struct StoreSink: ResultSink {
    let store: JobStore

    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        if body.json["status"] == "IN_PROGRESS", !isStream {
            store.recordProgress(jobID, body.json["output"] ?? .null)
        } else {
            store.recordResult(jobID, body.json, isStream: isStream)
        }
        return .delivered
    }

    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        store.recordChunk(jobID, body.json["output"] ?? .null)
        return .delivered
    }
}
