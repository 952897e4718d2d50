"""The orchestrator (no database: workflows in memory; the stub LLM from `fake-upstream llm`)
through the official clients: runpod's `Endpoint` (run_sync, run + status) and the MCP client
calling its tools over streamable HTTP."""
import os

import anyio
import httpx2
import pytest
import runpod
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from workers import Worker, fake_upstream

BIN = os.path.dirname(os.environ.get("ECHO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "echo")))
LEAD = {"id": "py-1", "name": "Ada", "title": "VP Engineering", "company": "Acme", "company_size": 400, "industry": "Software",
        "email": "ada@acme.io", "signals": ["demo_request"]}


@pytest.fixture(scope="module")
def llm():
    for base in fake_upstream(os.path.join(BIN, "fake-upstream"), "llm"):
        yield base + "/v1"


@pytest.fixture(scope="module")
def worker(llm):
    started = Worker(os.path.join(BIN, "orchestrator"), dict(os.environ, LLM_BASE_URL=llm, LLM_MODEL="invalid-once", WORKER_CONCURRENCY="4"))
    yield started
    started.stop()


def test_orchestrator_through_runpod_endpoint(worker):
    runpod.api_key = "unused"
    runpod.endpoint_url_base = f"{worker.base}/v2"
    endpoint = runpod.Endpoint("orchestrator")
    output = endpoint.run_sync({"action": "process_lead", "lead_data": LEAD}, timeout=30)
    assert output["status"] == "qualified" and output["score"] == 0.85
    # The stub's first answer broke the schema; the re-ask was valid.
    assert output["stages"]["qualification"]["llm_attempts"] == 2
    again = endpoint.run_sync({"action": "process_lead", "lead_data": LEAD}, timeout=30)
    assert again["reused"] is True
    job = endpoint.run({"action": "batch_process", "leads": [LEAD, {"id": "py-2", "email": "x@gmail.com"}, {"name": "no id"}]})
    batch = job.output(timeout=30)
    assert [lead.get("status") for lead in batch["leads"]] == ["qualified", "rejected", "invalid"]
    assert "input.leads[2].id is missing" in batch["leads"][2]["error"]
    # The batch's report rebuilt from its leads, by the job's id.
    rebuilt = endpoint.run_sync({"action": "get_batch", "batch_id": job.job_id}, timeout=30)
    assert rebuilt["finished"] is True and rebuilt["total"] == 3 and rebuilt["pending"] == 0
    assert [lead.get("status") for lead in rebuilt["leads"]] == ["qualified", "rejected", "invalid"]


def test_orchestrator_mcp_tools(worker):
    async def body():
        async with Client(streamable_http_client(f"{worker.base}/mcp", http_client=httpx2.AsyncClient())) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert tools == {"process_lead", "batch_process", "get_lead", "get_batch"}
            shown = await client.call_tool("get_lead", {"lead_id": "py-1"})
            assert not shown.is_error
            assert shown.structured_content["status"] == "qualified"
            assert [step["stage"] for step in shown.structured_content["steps"]] == ["context", "qualification", "enrichment", "memory", "strategy"]
            bad = await client.call_tool("process_lead", {"lead_data": {"name": "x"}})
            assert bad.is_error and "lead_data.id" in bad.content[0].text
    anyio.run(body)
