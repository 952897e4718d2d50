import Testing
import TestSupport
import WorkerJSON

@testable import WorkerRuntime

@Suite("Worker API URLs", .defaultPass)
struct PlatformURLsTests {
    let urls = PlatformURLs(
        endpoints: .init(
            jobTake: "http://p/v2/ep1/job-take/w42?gpu=NVIDIA+H100",
            jobDone: "http://p/v2/ep1/job-done/w42/$ID?gpu=NVIDIA+H100",
            jobStream: "http://p/v2/ep1/job-stream/w42/$ID?gpu=NVIDIA+H100",
            ping: "http://p/v2/ep1/ping/w42?gpu=NVIDIA+H100"))

    @Test("job-take for one job, job-take-batch for more (checklist 5, 6)")
    func jobTake() {
        #expect(urls.jobTake(count: 1, jobInProgress: false) == "http://p/v2/ep1/job-take/w42?gpu=NVIDIA+H100&job_in_progress=0")
        #expect(
            urls.jobTake(count: 3, jobInProgress: false)
                == "http://p/v2/ep1/job-take-batch/w42?gpu=NVIDIA+H100&batch_size=3&job_in_progress=0")
        #expect(urls.jobTake(count: 2, jobInProgress: true).hasSuffix("batch_size=2&job_in_progress=1"))
    }

    @Test("job-done and job-stream (checklist 12, 19, 20)")
    func results() {
        #expect(urls.jobDone(jobID: "j-1", isStream: false) == "http://p/v2/ep1/job-done/w42/j-1?gpu=NVIDIA+H100&isStream=false")
        #expect(urls.jobDone(jobID: "j-1", isStream: true).hasSuffix("/job-done/w42/j-1?gpu=NVIDIA+H100&isStream=true"))
        #expect(urls.jobStream(jobID: "j-1") == "http://p/v2/ep1/job-stream/w42/j-1?gpu=NVIDIA+H100&isStream=false")
        #expect(urls.jobDone(jobID: "a b/c", isStream: false).contains("/job-done/w42/a%20b%2Fc?"))
    }

    @Test("job-stop keeps the query and adds nothing (checklist 27)")
    func jobStop() {
        #expect(urls.jobStop == "http://p/v2/ep1/job-stop/w42?gpu=NVIDIA+H100")
        let noTake = PlatformURLs(endpoints: .init(jobTake: "http://p/take", jobDone: "http://p/d", jobStream: "http://p/s", ping: nil))
        #expect(noTake.jobStop == nil)
    }

    @Test("ping lists in-progress ids, comma-joined and escaped, omitted when idle (checklist 24)")
    func ping() {
        #expect(urls.ping(inProgress: []) == "http://p/v2/ep1/ping/w42?gpu=NVIDIA+H100&runpod_version=1.12.0")
        #expect(
            urls.ping(inProgress: ["b-2", "b-0", "b-1"])
                == "http://p/v2/ep1/ping/w42?gpu=NVIDIA+H100&job_id=b-2%2Cb-0%2Cb-1&runpod_version=1.12.0")
    }

    @Test("templates without a query get '?'")
    func noQuery() {
        #expect(PlatformURLs.appending("a=1", to: "http://p/x") == "http://p/x?a=1")
        #expect(PlatformURLs.appending("a=1", to: "http://p/x?b=2") == "http://p/x?b=2&a=1")
    }
}
