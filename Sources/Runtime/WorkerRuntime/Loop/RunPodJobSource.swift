import CurlHTTP
/// The RunPod worker API over libcurl, with the headers and URLs of docs/protocol.md, sections 1.3 and 1.6.
package struct RunPodJobSource: JobSource {
    let urls: PlatformURLs
    let apiKey: String?
    let client: CurlHTTPClient
    let timings: WorkerTimings

    package init(configuration: WorkerConfiguration, platform: WorkerConfiguration.PlatformEndpoints, client: CurlHTTPClient) {
        self.urls = PlatformURLs(endpoints: platform)
        self.apiKey = configuration.apiKey
        self.client = client
        self.timings = configuration.timings
    }

    private var authorization: [(name: String, value: String)] {
        apiKey.map { [("Authorization", $0)] } ?? []
    }

    package func takeJobs(count: Int, jobInProgress: Bool) async -> JobTakeOutcome {
        let request = HTTPClientRequest(
            url: urls.jobTake(count: count, jobInProgress: jobInProgress),
            headers: authorization + [("Accept", "application/json")], timeout: timings.longPollTimeout)
        do {
            let response = try await client.execute(request)
            return JobTakeOutcome.interpret(status: response.status, body: response.body)
        } catch {
            return .failed("\(error)")
        }
    }

    package func pollStopRequests() async -> StopPollOutcome? {
        guard let url = urls.jobStop else { return nil }
        let request = HTTPClientRequest(url: url, headers: authorization, timeout: timings.longPollTimeout)
        do {
            let response = try await client.execute(request)
            return StopPollOutcome.interpret(status: response.status, body: response.body)
        } catch {
            return .failed("\(error)")
        }
    }

    package func postResult(_ body: ResultPayload, jobID: String, isStream: Bool) async -> DeliveryOutcome {
        await post(body.bytes, to: urls.jobDone(jobID: jobID, isStream: isStream), jobID: jobID)
    }

    package func postChunk(_ body: ResultPayload, jobID: String) async -> DeliveryOutcome {
        await post(body.bytes, to: urls.jobStream(jobID: jobID), jobID: jobID)
    }

    private func post(_ body: [UInt8], to url: String, jobID: String) async -> DeliveryOutcome {
        // The platform's own content type for these JSON bodies, and X-Request-ID per request
        // (runpod-python leaks it across requests on a shared session). An id that is not a
        // plain token (control bytes, spaces, non-ASCII) is left out of the header rather than
        // sent: it could split the header; the id is in the escaped URL anyway.
        var headers: [(name: String, value: String)] =
            authorization + [("Content-Type", "application/x-www-form-urlencoded"), ("charset", "utf-8")]
        if Self.isHeaderSafe(jobID) { headers.append(("X-Request-ID", jobID)) }
        let request = HTTPClientRequest(method: "POST", url: url, headers: headers, body: body, timeout: timings.postTimeout)
        do {
            let response = try await client.execute(request)
            return DeliveryOutcome.interpret(status: response.status, body: response.body, retryAfter: response.header("Retry-After"))
        } catch {
            return .failed("\(error)")
        }
    }

    /// Visible ASCII only, checked byte by byte ("\r\n" is one Swift `Character`).
    static func isHeaderSafe(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
