import CurlHTTP
import Logging
import WorkerJSON

/// Delivers the platform's webhook: POST the envelope; a non-2xx answer or a failure is retried.
package enum Webhook {
    package static func deliver(
        _ payload: JSONValue, to url: String, retryDelays: [Duration], timeout: Duration, client: CurlHTTPClient,
        logger: Logger
    ) async {
        guard let request = try? HTTPClientRequest.json(url: url, body: payload, timeout: timeout) else { return }
        for attempt in 0...retryDelays.count {
            do {
                let response = try await client.execute(request)
                if (200..<300).contains(response.status) {
                    logger.debug("Webhook delivered to \(url)")
                    return
                }
                logger.warning("Webhook to \(url) answered HTTP \(response.status) (attempt \(attempt + 1))")
            } catch {
                logger.warning("Webhook to \(url) failed (attempt \(attempt + 1)): \(error)")
            }
            if attempt < retryDelays.count { try? await Task.sleep(for: retryDelays[attempt]) }
        }
        logger.error("Webhook to \(url) was not delivered after \(retryDelays.count + 1) attempts")
    }
}
