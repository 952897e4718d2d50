"""The peer: runpod-python 1.12.0 with an async handler that returns its input."""
import os

import runpod

CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "1"))


async def handler(job):
    return job["input"]


runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda _: CONCURRENCY})
