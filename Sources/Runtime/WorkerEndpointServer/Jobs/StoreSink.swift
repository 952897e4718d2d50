import EndpointAPI
import WorkerJSON
import WorkerRuntime

/// Where the runner's output goes in the endpoint server: into the job store, for one job (held
/// by reference, so nothing is looked up by id on the way).
struct StoreSink: InProcessResultSink {
    let store: JobStore
    let job: StoredJob

    func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        if body.json["status"] == "IN_PROGRESS", !isStream {
            store.recordProgress(job, body.json["output"] ?? .null)
        } else {
            record(body, jobID: jobID, isStream: isStream)
        }
        return .delivered
    }

    func record(_ body: ResultPayload, jobID: String, isStream: Bool) {
        store.recordResult(job, body.json, bytes: body.byteCount, isStream: isStream)
    }

    var maxChunkBytes: Int { EndpointLimits.inProcessChunkBytes }

    func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        store.recordChunk(job, body.json["output"] ?? .null, bytes: body.byteCount)
        return .delivered
    }
}
