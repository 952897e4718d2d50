"""The peer: the context7 handler the project's design started from, in Python on runpod-python
1.12.0. An aiohttp.ClientSession opened per upstream call, a redis-py cache (SETEX 300 s, key =
handler name + json.dumps(input, sort_keys=True)); served with --rp_serve_api.
Environment: CONTEXT7_BASE_URL, CONTEXT7_API_KEY, REDIS_URL, WORKER_CONCURRENCY."""
import json
import os

import aiohttp
import redis.asyncio as redis
import runpod

BASE = os.environ.get("CONTEXT7_BASE_URL", "https://context7.com/api")
KEY = os.environ.get("CONTEXT7_API_KEY")
CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "1"))
cache = redis.from_url(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None


async def fetch(path, params):
    headers = {"Authorization": f"Bearer {KEY}"} if KEY else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(BASE + path, params=params, headers=headers) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            if path.endswith("/search"):
                return await response.json()
            return await response.text()


async def handler(job):
    data = job["input"]
    key = "context7:" + json.dumps(data, sort_keys=True)
    if cache is not None:
        hit = await cache.get(key)
        if hit is not None:
            return json.loads(hit)
    action = data.get("action")
    if action == "resolve_library":
        name = data["library_name"]
        found = await fetch("/v2/libs/search", {"libraryName": name, "query": data.get("query", name)})
        result = {"libraries": (found or {}).get("results", [])}
    elif action == "get_docs":
        text = await fetch("/v2/context", {"libraryId": data["library_id"], "query": data.get("query") or data.get("topic"), "type": "txt"})
        result = {"library_id": data["library_id"], "content": text or ""}
    else:
        return {"error": f"unknown action {action}"}
    if cache is not None:
        await cache.setex(key, 300, json.dumps(result))
    return result


runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda _: CONCURRENCY})
