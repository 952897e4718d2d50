import CCurl
import CCurlHelpers

/// Translates an HTTPClientRequest into easy-handle options.
enum CurlRequestSetup {
    /// Returns nil on success, else why the request cannot be sent.
    static func configure(_ easy: UnsafeMutableRawPointer, for transfer: CurlTransfer, userAgent: String) -> String? {
        let request = transfer.request
        var failures: [String] = []
        func check(_ code: CURLcode, _ what: String) {
            if code != CURLE_OK { failures.append("\(what): \(String(cString: curl_easy_strerror(code)))") }
        }
        guard request.url.hasPrefix("http://") || request.url.hasPrefix("https://") else {
            return "the URL must start with http:// or https://"
        }
        check(wr_easy_setopt_ptr(easy, CURLOPT_URL, request.url), "URL")
        check(wr_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        check(wr_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1), "TCP_KEEPALIVE")
        check(wr_easy_setopt_ptr(easy, CURLOPT_ACCEPT_ENCODING, ""), "ACCEPT_ENCODING")
        check(wr_easy_setopt_ptr(easy, CURLOPT_USERAGENT, userAgent), "USERAGENT")
        check(wr_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(request.connectTimeout)), "CONNECTTIMEOUT")
        check(wr_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeout.map(milliseconds) ?? 0), "TIMEOUT")
        check(wr_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer), "ERRORBUFFER")
        if let limit = request.maxResponseBytes, transfer.collectsBody, request.method != "HEAD" {
            // A declared Content-Length over the limit fails before a byte of the body is read
            // (CURLE_FILESIZE_EXCEEDED); a body without one is counted as it arrives (receiveBody).
            check(wr_easy_setopt_offt(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit)), "MAXFILESIZE")
        }
        if let idle = request.lowSpeedTimeout {
            check(wr_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1), "LOW_SPEED_LIMIT")
            check(wr_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, milliseconds(idle) / 1000)), "LOW_SPEED_TIME")
        }

        switch request.method {
        case "GET":
            check(wr_easy_setopt_long(easy, CURLOPT_HTTPGET, 1), "HTTPGET")
        case "HEAD":
            check(wr_easy_setopt_long(easy, CURLOPT_NOBODY, 1), "NOBODY")
        default:
            if request.method != "POST" {
                check(wr_easy_setopt_ptr(easy, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
            }
            let body = request.body ?? []
            check(wr_easy_setopt_long(easy, CURLOPT_POST, 1), "POST")
            check(wr_easy_setopt_offt(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "POSTFIELDSIZE")
            // COPYPOSTFIELDS makes curl own a copy, so the body's lifetime is not ours to manage.
            // An empty body still needs a valid pointer; the size (0) says how much is read.
            (body.isEmpty ? [0] : body).withUnsafeBytes { raw in
                check(wr_easy_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, raw.baseAddress), "COPYPOSTFIELDS")
            }
        }

        var list: UnsafeMutablePointer<curl_slist>? = nil
        for (name, value) in request.headers {
            // Bytes, not Characters: "\r\n" is one Character, and would pass a Character test.
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }),
                !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 })
            else { return "header '\(name.debugDescription)' has a line break, NUL, colon or space where it cannot" }
            list = curl_slist_append(list, "\(name): \(value)")
        }
        // Without this curl waits up to a second for "100 Continue" before sending bodies over 1 KiB.
        list = curl_slist_append(list, "Expect:")
        transfer.headerList = list
        check(wr_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, list), "HTTPHEADER")

        let userdata = Unmanaged.passUnretained(transfer).toOpaque()
        check(wr_easy_setopt_write(easy, curlWriteCallback), "WRITEFUNCTION")
        check(wr_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, userdata), "WRITEDATA")
        check(wr_easy_setopt_header(easy, curlHeaderCallback), "HEADERFUNCTION")
        check(wr_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, userdata), "HEADERDATA")
        return failures.isEmpty ? nil : failures.joined(separator: "; ")
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}

private func curlWriteCallback(
    _ pointer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userdata: UnsafeMutableRawPointer?
) -> Int {
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata!).takeUnretainedValue()
    // Returning fewer bytes than given makes curl abort the transfer.
    return transfer.receiveBody(UnsafeRawBufferPointer(start: pointer, count: size * count)) ? size * count : 0
}

private func curlHeaderCallback(
    _ pointer: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ userdata: UnsafeMutableRawPointer?
) -> Int {
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata!).takeUnretainedValue()
    transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: pointer, count: size * count))
    return size * count
}
