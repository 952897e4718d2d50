"""A tiny OpenAI-compatible upstream for client tests and benchmarks (stdlib only).

POST /v1/chat/completions: a fixed completion, or with "stream": true, N SSE chunks then [DONE]
(N = STUB_EVENTS, default 5). model "fail" answers 401 in OpenAI's error schema; model "large" answers a
completion of LARGE_COMPLETION characters (over the platform's 1 MiB chunk limit).
GET /v1/models: one model.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENTS = int(os.environ.get("STUB_EVENTS", "5"))
LARGE_COMPLETION = 3_000_000


def completion(text):
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def chunk(index):
    delta = {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "stub",
        "choices": [{"index": 0, "delta": {"content": f"t{index} "}, "finish_reason": None}],
    }
    return f"data: {json.dumps(delta)}\n\n".encode()


class JSONRequestHandler(BaseHTTPRequestHandler):
    """A quiet handler that answers JSON (the fakes of the client tests share it)."""

    def log_message(self, *args):
        pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Handler(JSONRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "stub-model", "object": "model", "created": 1, "owned_by": "stub"}]})
        else:
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        if body.get("model") == "fail":
            self.send_json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}})
            return
        if not body.get("stream"):
            self.send_json(200, completion("x" * LARGE_COMPLETION if body.get("model") == "large" else "hello"))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index in range(EVENTS):
            self.write_chunk(chunk(index))
        self.write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def write_chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def serve(port=0):
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


if __name__ == "__main__":
    server = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
