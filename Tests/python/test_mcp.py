"""The official MCP client (`mcp` 2.x from PyPI, unmodified) against `echo` and `memory`: over
streamable HTTP (`--local`) and stdio (`--mcp`), in its `legacy` (initialize) and `auto`
(server/discover first) modes."""
import http.server
import itertools
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from workers import Worker

BIN = os.path.dirname(os.environ.get("ECHO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "echo")))
KEY = "mcp-test-key"
MODES = ["legacy", "auto"]
# The embeddings model (scripts/fetch-model.sh): memory answers semantically when it is given.
MODEL = os.environ.get("EMBEDDINGS_MODEL_DIR")
TRANSPORTS = ["http", "stdio"]


@pytest.fixture(scope="module")
def memory_dir():
    with tempfile.TemporaryDirectory() as directory:
        yield directory


@pytest.fixture(scope="module")
def workers(memory_dir):
    env = dict(os.environ, RUNPOD_API_KEY=KEY, WORKER_CONCURRENCY="4")
    started = {"echo": Worker(os.path.join(BIN, "echo"), env),
               "memory": Worker(os.path.join(BIN, "memory"), dict(env, MEMORY_DIR=os.path.join(memory_dir, "http"),
                                                                   **({"EMBEDDINGS_MODEL_DIR": MODEL} if MODEL else {})))}
    yield started
    for worker in started.values():
        worker.stop()


def connect(workers, memory_dir, handler, transport, mode, errlog=None, headers=None):
    """A client for `handler` over `transport`; stdio launches the worker as desktop agents do."""
    if transport == "http":
        headers = {"Authorization": f"Bearer {KEY}"} if headers is None else headers
        return Client(streamable_http_client(f"{workers[handler].base}/mcp", http_client=httpx2.AsyncClient(headers=headers)),
                      mode=mode)
    env = {"PATH": os.environ.get("PATH", ""), "MEMORY_DIR": os.path.join(memory_dir, "stdio")}
    if MODEL:
        env["EMBEDDINGS_MODEL_DIR"] = MODEL
    params = StdioServerParameters(command=os.path.join(BIN, handler), args=["--mcp"], env=env)
    if errlog is None:
        return Client(params, mode=mode)
    return Client(stdio_client(params, errlog=errlog), mode=mode)


def run(body):
    return anyio.run(body)


def in_progress(base):
    request = urllib.request.Request(f"{base}/health", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["jobs"]["inProgress"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", MODES)
def test_echo_tool(workers, memory_dir, mode, transport):
    async def body():
        async with connect(workers, memory_dir, "echo", transport, mode) as client:
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == ["echo"]
            result = await client.call_tool("echo", {"a": 1, "nested": {"b": [1, 2]}})
            assert not result.is_error
            assert result.structured_content == {"a": 1, "nested": {"b": [1, 2]}}
            assert json.loads(result.content[0].text) == {"a": 1, "nested": {"b": [1, 2]}}
            if mode == "auto":
                # The client found the 2026-07-28 era through server/discover.
                assert client.session.discover_result is not None
    run(body)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", MODES)
def test_memory_tools(workers, memory_dir, mode, transport):
    namespace = f"mcp-{mode}-{transport}"

    async def body():
        async with connect(workers, memory_dir, "memory", transport, mode) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert sorted(tools) == ["delete", "embed", "get", "retrieve", "stats", "store", "store_batch"]
            assert tools["retrieve"].annotations.read_only_hint is True
            assert tools["delete"].annotations.destructive_hint is True
            assert "content" in tools["store"].input_schema["properties"]

            stored = await client.call_tool("store", {"namespace": namespace, "key": "paris", "content": "Paris is the capital of France"})
            assert stored.structured_content == {"stored": 1, "keys": ["paris"], "namespace": namespace}
            batch = await client.call_tool("store_batch", {"namespace": namespace, "items": [
                {"key": "rome", "content": "Rome is the capital of Italy", "metadata": {"country": "it"}},
                {"key": "tea", "content": "Green tea is brewed at 80 degrees"}]})
            assert batch.structured_content["stored"] == 2
            found = await client.call_tool("retrieve", {"namespace": namespace, "query": "capital of Italy", "k": 1})
            assert found.structured_content["memories"][0]["key"] == "rome"
            filtered = await client.call_tool("retrieve", {"namespace": namespace, "query": "capital", "filter": {"country": "it"}})
            assert [m["key"] for m in filtered.structured_content["memories"]] == ["rome"]
            if MODEL:
                # Meaning, not words: the paraphrase shares none with the fact it finds.
                hot = await client.call_tool("retrieve", {"namespace": namespace, "query": "hot drink temperature", "k": 1})
                assert hot.structured_content["memories"][0]["key"] == "tea"
            got = await client.call_tool("get", {"namespace": namespace, "key": "tea"})
            assert got.structured_content["found"] is True
            assert got.structured_content["memory"]["content"] == "Green tea is brewed at 80 degrees"
            deleted = await client.call_tool("delete", {"namespace": namespace, "key": "tea"})
            assert deleted.structured_content == {"deleted": True}
            stats = await client.call_tool("stats", {"namespace": namespace})
            assert stats.structured_content["count"] == 2
            embedded = await client.call_tool("embed", {"texts": ["one", "two"]})
            assert embedded.structured_content["dimension"] == 384
            assert len(embedded.structured_content["vectors"]) == 2
            if MODEL:
                assert embedded.structured_content["model"] == "local:all-MiniLM-L6-v2"

            # Invalid arguments: a result the model can read, naming the field.
            missing = await client.call_tool("store", {"namespace": namespace, "key": "x"})
            assert missing.is_error and "arguments.content" in missing.content[0].text
            misspelt = await client.call_tool("retrieve", {"namespace": namespace, "qeury": "x"})
            assert misspelt.is_error and "arguments.query: is required" in misspelt.content[0].text
            # The handler's own checks come back the same way.
            bad = await client.call_tool("store", {"namespace": "../etc", "key": "x", "content": "y"})
            assert bad.is_error and "namespace" in bad.content[0].text
    run(body)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", MODES)
def test_progress_errors_and_unknown_tools(workers, memory_dir, mode, transport):
    async def body():
        async with connect(workers, memory_dir, "echo", transport, mode) as client:
            seen = []

            async def on_progress(progress, total, message):
                seen.append((progress, message))

            result = await client.call_tool("echo", {"progress": 3}, progress_callback=on_progress)
            assert result.structured_content == {"progress": 3}
            assert [p for p, _ in seen] == [1, 2, 3]
            assert json.loads(seen[0][1]) == {"step": 0}

            failed = await client.call_tool("echo", {"fail": "the model server is down"})
            assert failed.is_error and failed.content[0].text == "the model server is down"
            invalid = await client.call_tool("echo", {"sleep": "long"})
            assert invalid.is_error and "input.sleep" in invalid.content[0].text

            with pytest.raises(MCPError) as error:
                await client.call_tool("no_such_tool", {})
            assert error.value.error.code == -32602
            # The connection is still good after every failure above.
            assert (await client.call_tool("echo", {"ok": True})).structured_content == {"ok": True}
    run(body)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("mode", MODES)
def test_cancellation_stops_the_job(workers, memory_dir, mode, transport, tmp_path):
    log_path = tmp_path / "stderr.log"

    async def body():
        with open(log_path, "w") as errlog:
            async with connect(workers, memory_dir, "echo", transport, mode, errlog=errlog) as client:
                started = time.monotonic()
                with anyio.move_on_after(0.5):
                    await client.call_tool("echo", {"sleep": 30})
                assert time.monotonic() - started < 5
                if transport == "http":
                    deadline = time.monotonic() + 10
                    while in_progress(workers["echo"].base) != 0:
                        assert time.monotonic() < deadline, "the cancelled call's job kept running"
                        await anyio.sleep(0.05)
                else:
                    deadline = time.monotonic() + 10
                    while "Job stopped" not in log_path.read_text():
                        assert time.monotonic() < deadline, "the cancelled call's job kept running"
                        await anyio.sleep(0.05)
                assert (await client.call_tool("echo", {"after": 1})).structured_content == {"after": 1}
    run(body)


@pytest.mark.parametrize("mode", MODES)
def test_auth_and_origin(workers, memory_dir, mode):
    base = workers["echo"].base
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()

    def status(headers):
        request = urllib.request.Request(f"{base}/mcp", data=ping, headers={"Content-Type": "application/json",
                                                                           "Accept": "application/json, text/event-stream", **headers})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert status({}) == 401
    assert status({"Authorization": f"Bearer {KEY}"}) == 200
    assert status({"Authorization": f"Bearer {KEY}", "Origin": "https://evil.example"}) == 403

    async def refused(headers):
        with pytest.raises(Exception):
            async with connect(workers, memory_dir, "echo", "http", mode, headers=headers) as client:
                await client.list_tools()

    run(lambda: refused({}))
    run(lambda: refused({"Authorization": f"Bearer {KEY}", "Origin": "https://evil.example"}))


class RoundRobinProxy(http.server.ThreadingHTTPServer):
    """Sends each request to the next backend in turn, as RunPod's load balancer may: no
    stickiness, no cookies."""

    def __init__(self, backends):
        self.backends = itertools.cycle(backends)
        self.lock = threading.Lock()
        self.hits = {backend: 0 for backend in backends}
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        with self.server.lock:
            backend = next(self.server.backends)
            self.server.hits[backend] += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if self.command == "POST" else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        request = urllib.request.Request(backend + self.path, data=body, method=self.command, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        data = response.read()
        self.send_response(response.status if hasattr(response, "status") else response.code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _forward
    do_GET = _forward
    do_DELETE = _forward


@pytest.mark.parametrize("mode", MODES)
def test_two_replicas_behind_a_round_robin_proxy(memory_dir, mode):
    """Initialize lands on one replica and every following request on the other, alternately."""
    env = dict(os.environ, RUNPOD_API_KEY=KEY)
    replicas = [Worker(os.path.join(BIN, "echo"), env), Worker(os.path.join(BIN, "echo"), env)]
    proxy = RoundRobinProxy([replica.base for replica in replicas])
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        async def body():
            url = f"http://127.0.0.1:{proxy.server_address[1]}/mcp"
            client = Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"})),
                            mode=mode)
            async with client:
                for index in range(6):
                    assert [t.name for t in (await client.list_tools()).tools] == ["echo"]
                    result = await client.call_tool("echo", {"n": index})
                    assert result.structured_content == {"n": index}
        run(body)
        # Every call went through (the auto mode's client caches tools/list as told by ttlMs), and
        # both replicas answered alternately.
        assert all(count >= 4 for count in proxy.hits.values()), proxy.hits
    finally:
        proxy.shutdown()
        for replica in replicas:
            replica.stop()
