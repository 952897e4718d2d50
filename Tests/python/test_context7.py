"""The context7 handler against the fake Context7 API (`fake-upstream context7`), through the official
clients: the MCP client (`mcp` 2.x) using Context7's own tool names, as an agent configured for
Context7's MCP server does, over streamable HTTP and stdio; and runpod's `Endpoint`."""
import os

import anyio
import httpx2
import pytest
import runpod
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from workers import Worker, fake_upstream

BIN = os.path.dirname(os.environ.get("ECHO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "echo")))


@pytest.fixture(scope="module")
def fake():
    for base in fake_upstream(os.path.join(BIN, "fake-upstream"), "context7"):
        yield base


@pytest.fixture(scope="module")
def worker(fake):
    started = Worker(os.path.join(BIN, "context7"), dict(os.environ, CONTEXT7_BASE_URL=fake, WORKER_CONCURRENCY="4"))
    yield started
    started.stop()


def connect(worker, fake, transport):
    if transport == "http":
        return Client(streamable_http_client(f"{worker.base}/mcp", http_client=httpx2.AsyncClient()))
    env = {"PATH": os.environ.get("PATH", ""), "CONTEXT7_BASE_URL": fake}
    return Client(StdioServerParameters(command=os.path.join(BIN, "context7"), args=["--mcp"], env=env))


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_context7_mcp_tool_names(worker, fake, transport):
    async def body():
        async with connect(worker, fake, transport) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert sorted(tools) == ["get_docs", "query-docs", "resolve-library-id", "resolve_library"]
            assert tools["query-docs"].annotations.read_only_hint is True
            assert tools["resolve-library-id"].annotations.open_world_hint is True

            found = await client.call_tool("resolve-library-id", {"libraryName": "react", "query": "hooks"})
            assert not found.is_error
            text = found.content[0].text
            assert text.startswith("Available Libraries:")
            assert "- Context7-compatible library ID: /react/react" in text

            docs = await client.call_tool("query-docs", {"libraryId": "/react/react", "query": "use state"})
            assert not docs.is_error
            assert docs.content[0].text.startswith("### use state (1)")

            native = await client.call_tool("get_docs", {"library_id": "/test/moved", "query": "x", "tokens": 150})
            assert native.structured_content["library_id"] == "/test/newhome"
            assert native.structured_content["redirected_from"] == "/test/moved"
            assert native.structured_content["truncated"] is True

            missing = await client.call_tool("get_docs", {"library_id": "not-an-id", "query": "x"})
            assert missing.is_error
            assert "library_id" in missing.content[0].text
    anyio.run(body)


def test_context7_through_runpod_endpoint(worker):
    runpod.api_key = "unused"
    runpod.endpoint_url_base = f"{worker.base}/v2"
    endpoint = runpod.Endpoint("context7")
    output = endpoint.run_sync({"action": "resolve_library", "library_name": "fastapi"}, timeout=30)
    assert [library["id"] for library in output["libraries"]][0] == "/fastapi/fastapi"
    job = endpoint.run({"action": "get_docs", "library_id": "/test/missing", "query": "x"})
    assert job.output(timeout=30) == {"library_id": "/test/missing", "content": "", "found": False}
