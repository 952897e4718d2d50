/// The worker API's URLs, built exactly as runpod-python builds them (docs/protocol.md, section 1.2).
struct PlatformURLs: Sendable {
    let endpoints: WorkerConfiguration.PlatformEndpoints

    /// `job-take` for one job, `job-take-batch` with `batch_size` for more.
    func jobTake(count: Int, jobInProgress: Bool) -> String {
        let flag = "job_in_progress=\(jobInProgress ? 1 : 0)"
        if count > 1 {
            let batch = endpoints.jobTake.replacing("/job-take/", with: "/job-take-batch/")
            return Self.appending("batch_size=\(count)&\(flag)", to: batch)
        }
        return Self.appending(flag, to: endpoints.jobTake)
    }

    func jobDone(jobID: String, isStream: Bool) -> String {
        Self.appending("isStream=\(isStream)", to: endpoints.jobDone.replacing("$ID", with: Self.pathSafe(jobID)))
    }

    /// Stream posts carry `isStream=false`: the platform expects runpod-python's quirk.
    func jobStream(jobID: String) -> String {
        Self.appending("isStream=false", to: endpoints.jobStream.replacing("$ID", with: Self.pathSafe(jobID)))
    }

    /// The per-job stop channel; nil when the take URL has no `/job-take/` to derive it from.
    var jobStop: String? {
        guard endpoints.jobTake.contains("/job-take/") else { return nil }
        return endpoints.jobTake.replacing("/job-take/", with: "/job-stop/")
    }

    func ping(inProgress: [String]) -> String? {
        guard let ping = endpoints.ping else { return nil }
        var query = ""
        if !inProgress.isEmpty {
            query = "job_id=\(Self.queryEscaped(inProgress.joined(separator: ",")))&"
        }
        return Self.appending(query + "runpod_version=\(WorkerRuntimeVersion.protocolVersion)", to: ping)
    }

    /// Keeps `&` after an existing query (bit-exact with the platform's templates), `?` otherwise.
    static func appending(_ query: String, to url: String) -> String {
        url + (url.contains("?") ? "&" : "?") + query
    }

    static func queryEscaped(_ value: String) -> String {
        percentEncoded(value) { $0.isASCII && ($0.isLetter || $0.isNumber || "-._~".contains($0)) }
    }

    /// Job ids are normally URL-safe; anything else is escaped rather than corrupting the path.
    static func pathSafe(_ value: String) -> String {
        percentEncoded(value) { $0.isASCII && ($0.isLetter || $0.isNumber || "-._~:@!$&'()*+,;=".contains($0)) }
    }

    private static func percentEncoded(_ value: String, keeping keep: (Character) -> Bool) -> String {
        var out = ""
        for character in value {
            if keep(character) {
                out.append(character)
            } else {
                for byte in String(character).utf8 {
                    let hex = String(byte, radix: 16, uppercase: true)
                    out += "%" + (hex.count == 1 ? "0" + hex : hex)
                }
            }
        }
        return out
    }
}
