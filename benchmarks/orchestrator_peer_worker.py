"""The peer: the orchestrator the project's design started from, in Python on runpod-python 1.12.0.
Each stage that runs on another endpoint POSTs /run with aiohttp, then polls /status every 1 s until
COMPLETED or FAILED; the LLM is called over OpenAI's chat API with aiohttp; batch_process is an
unbounded asyncio.gather; nothing is kept (no state, no database). Served with --rp_serve_api.
Environment: CONTEXT7_ENDPOINT, MEMORY_ENDPOINT (base URLs), LLM_BASE_URL, LLM_MODEL, CONTEXT7_LIBRARY,
QUALIFICATION_THRESHOLD, WORKER_CONCURRENCY."""
import asyncio
import json
import os
import time

import aiohttp
import runpod

CONTEXT7 = os.environ.get("CONTEXT7_ENDPOINT")
MEMORY = os.environ.get("MEMORY_ENDPOINT")
LLM = os.environ.get("LLM_BASE_URL")
MODEL = os.environ.get("LLM_MODEL", "stub")
LIBRARY = os.environ.get("CONTEXT7_LIBRARY", "/acme/widgets")
THRESHOLD = float(os.environ.get("QUALIFICATION_THRESHOLD", "0.5"))
CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "1"))


async def run_job(session, endpoint, payload):
    async with session.post(f"{endpoint}/run", json={"input": payload}) as response:
        job = await response.json()
    while True:
        await asyncio.sleep(1)
        async with session.get(f"{endpoint}/status/{job['id']}") as response:
            status = await response.json()
        if status["status"] == "COMPLETED":
            return status.get("output")
        if status["status"] == "FAILED":
            raise RuntimeError(status.get("error"))


async def ask(session, system, lead, schema_name, extra=""):
    body = {"model": MODEL, "messages": [{"role": "system", "content": system},
                                         {"role": "user", "content": "Lead:\n" + json.dumps(lead) + extra}],
            "response_format": {"type": "json_schema", "json_schema": {"name": schema_name, "schema": {"type": "object"}}},
            "temperature": 0}
    async with session.post(f"{LLM}/chat/completions", json=body) as response:
        answer = await response.json()
    return json.loads(answer["choices"][0]["message"]["content"])


async def process_lead(session, lead):
    started = time.perf_counter()
    context = await run_job(session, CONTEXT7, {"action": "get_docs", "library_id": LIBRARY,
                                                "query": f"How do {lead.get('industry')} companies use serverless GPUs?"})
    qualification = await ask(session, "You qualify B2B sales leads.", lead, "lead_qualification",
                              "\n\nProduct documentation:\n" + (context or {}).get("content", "")[:6000])
    result = {"lead_id": lead["id"], "score": qualification["score"]}
    if qualification["score"] < THRESHOLD:
        result["status"] = "rejected"
    else:
        enrichment, _ = await asyncio.gather(
            ask(session, "You research B2B sales leads.", lead, "lead_enrichment"),
            run_job(session, MEMORY, {"action": "store", "namespace": "leads-peer", "key": f"lead:{lead['id']}",
                                      "content": json.dumps(lead), "metadata": {"lead_id": lead["id"]}}))
        await ask(session, "You plan how to approach a qualified B2B sales lead.", lead, "growth_strategy", json.dumps(enrichment))
        result["status"] = "qualified"
    result["duration_ms"] = (time.perf_counter() - started) * 1000
    return result


async def handler(job):
    data = job["input"]
    async with aiohttp.ClientSession() as session:
        if data.get("action") == "process_lead":
            return await process_lead(session, data["lead_data"])
        if data.get("action") == "batch_process":
            leads = await asyncio.gather(*(process_lead(session, lead) for lead in data["leads"]))
            return {"total": len(leads), "leads": leads}
    return {"error": f"unknown action {data.get('action')}"}


runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda _: CONCURRENCY})
