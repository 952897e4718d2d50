/// What an upstream's HTTP status says about a request sent to it, for a caller that may send the
/// request elsewhere (the gateway, the OpenAI passthrough's fallback).
package enum UpstreamStatus {
    /// The upstream did not take the request: 429 and 5xx, but not 508 (Loop Detected), which is
    /// an answer: a gateway refused a request that came back to it, a configuration error no
    /// other upstream mends.
    package static func notAccepted(_ status: Int) -> Bool { status == 429 || (status >= 500 && status != 508) }
}
