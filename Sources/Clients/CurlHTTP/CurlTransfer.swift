import CCurl
import CCurlHelpers

/// One transfer's state. Owned by the curl thread from the moment it is submitted: every field
/// is touched only there, so it needs no lock.
final class CurlTransfer: @unchecked Sendable {
    enum Delivery {
        case collect(CheckedContinuation<HTTPClientResponse, any Error>)
        case callback(@Sendable (Result<HTTPClientResponse, HTTPClientError>) -> Void)
        case stream(
            head: CheckedContinuation<HTTPClientStreamingResponse, any Error>?,
            body: AsyncThrowingStream<[UInt8], any Error>.Continuation,
            stream: HTTPClientBody?)
    }

    let id: UInt64
    let request: HTTPClientRequest
    private var delivery: Delivery
    private var status = 0
    private var headers: [(name: String, value: String)] = []
    private var received: [UInt8] = []
    private(set) var finished = false
    /// The body passed `request.maxResponseBytes`; curl was told to stop.
    private(set) var overflowed = false

    var easy: UnsafeMutableRawPointer?
    var headerList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init(id: UInt64, request: HTTPClientRequest, delivery: Delivery) {
        self.id = id
        self.request = request
        self.delivery = delivery
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        errorBuffer.deallocate()
        if let headerList { curl_slist_free_all(headerList) }
    }

    private var head: HTTPClientResponseHead { HTTPClientResponseHead(status: status, headers: headers) }

    /// The body is gathered in memory (`execute`, `send`), so `request.maxResponseBytes` applies.
    var collectsBody: Bool {
        if case .stream = delivery { return false }
        return true
    }

    /// One header line, as curl hands them over (status line, fields, then a blank line).
    func receiveHeaderLine(_ raw: UnsafeRawBufferPointer) {
        // Trim bytes, not Characters: "\r\n" is a single Character in Swift.
        var end = raw.count
        while end > 0, raw[end - 1] == 0x0A || raw[end - 1] == 0x0D { end -= 1 }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<end]), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A new response (after 100-continue or a redirect) replaces the previous head.
            headers.removeAll()
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if line.isEmpty {
            if status >= 200 { deliverHeadIfStreaming() }
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingSpaces()
            headers.append((name, value))
        }
    }

    /// False aborts the transfer (the body is over its limit).
    func receiveBody(_ raw: UnsafeRawBufferPointer) -> Bool {
        switch delivery {
        case .collect, .callback:
            if let limit = request.maxResponseBytes, received.count + raw.count > limit {
                overflowed = true
                return false
            }
            received.append(contentsOf: raw)
        case .stream(_, let body, _):
            deliverHeadIfStreaming()
            body.yield(Array(raw))
        }
        return true
    }

    private func deliverHeadIfStreaming() {
        guard case .stream(let headContinuation?, let body, let stream?) = delivery else { return }
        // The caller owns the body from here: when it lets go, the transfer is aborted.
        delivery = .stream(head: nil, body: body, stream: nil)
        headContinuation.resume(returning: HTTPClientStreamingResponse(head: head, body: stream))
    }

    /// Ends the transfer: resumes whoever waits with the response or the error.
    func complete(error: HTTPClientError?) {
        guard !finished else { return }
        finished = true
        switch delivery {
        case .collect(let continuation):
            if let error {
                continuation.resume(throwing: error)
            } else {
                continuation.resume(returning: HTTPClientResponse(head: head, body: received))
            }
        case .callback(let completion):
            completion(error.map { .failure($0) } ?? .success(HTTPClientResponse(head: head, body: received)))
        case .stream(let headContinuation, let body, _):
            if let error {
                if let headContinuation { headContinuation.resume(throwing: error) }
                body.finish(throwing: error)
            } else {
                deliverHeadIfStreaming()
                body.finish()
            }
        }
        received = []
    }

    var errorMessage: String { String(cString: errorBuffer) }
}

extension StringProtocol {
    /// Without surrounding spaces, tabs and line breaks (header values, settings pasted in).
    package func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        var slice = Substring(self)
        while let first = slice.first, isSpace(first) { slice.removeFirst() }
        while let last = slice.last, isSpace(last) { slice.removeLast() }
        return String(slice)
    }
}
