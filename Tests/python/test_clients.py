"""The official clients against `echo --local`: runpod 1.12.0's Endpoint and the openai SDK."""
import os
import threading
import time
import urllib.request

import pytest

import stub_openai
from workers import Worker

ECHO = os.environ.get("ECHO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "echo"))
KEY = "client-test-key"


@pytest.fixture(scope="module")
def server():
    upstream = stub_openai.serve()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    env = dict(os.environ, RUNPOD_API_KEY=KEY, WORKER_CONCURRENCY="2",
               OPENAI_BASE_URL=f"http://127.0.0.1:{upstream.server_address[1]}")
    worker = Worker(ECHO, env)
    base = worker.base
    yield base
    worker.stop()
    upstream.shutdown()


@pytest.fixture(scope="module")
def endpoint(server):
    import runpod

    runpod.api_key = KEY
    runpod.endpoint_url_base = f"{server}/v2"
    return runpod.Endpoint("my-endpoint")


def test_run_status_output(endpoint):
    job = endpoint.run({"a": 1, "sleep": 0.2})
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    assert job.output(timeout=20) == {"a": 1, "sleep": 0.2}
    assert job.status() == "COMPLETED"


def test_run_with_full_request(endpoint):
    job = endpoint.run({"input": {"b": 2}, "policy": {"executionTimeout": 60000}})
    assert job.output(timeout=20) == {"b": 2}


def test_run_sync(endpoint):
    assert endpoint.run_sync({"x": [1, 2, 3]}, timeout=30) == {"x": [1, 2, 3]}


def test_stream(endpoint):
    job = endpoint.run({"stream": 3})
    assert list(job.stream()) == [{"chunk": 0}, {"chunk": 1}, {"chunk": 2}]


def test_cancel(endpoint):
    job = endpoint.run({"sleep": 30})
    deadline = time.time() + 10
    while job.status() != "IN_PROGRESS" and time.time() < deadline:
        time.sleep(0.05)
    assert job.cancel() == {"id": job.job_id, "status": "CANCELLED"}
    assert job.status() == "CANCELLED"


def test_health_and_purge(endpoint):
    blockers = [endpoint.run({"sleep": 2}) for _ in range(2)]
    queued = [endpoint.run({"n": n}) for n in range(3)]
    time.sleep(0.3)
    health = endpoint.health()
    assert health["jobs"]["inQueue"] >= 1
    assert set(health["workers"]) >= {"idle", "running"}
    purged = endpoint.purge_queue()
    assert purged["status"] == "completed"
    assert purged["removed"] >= 1
    for job in blockers:
        job.cancel()
    del queued


def test_wrong_key_is_refused(server):
    import runpod

    with pytest.raises(RuntimeError, match="401"):
        runpod.Endpoint("my-endpoint", api_key="wrong").run_sync({"a": 1})


@pytest.mark.parametrize("prefix", ["/openai/v1", "/v2/my-endpoint/openai/v1"])
def test_openai_chat(server, prefix):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}{prefix}", api_key=KEY)
    reply = client.chat.completions.create(model="ok", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "hello"
    text = "".join(
        part.choices[0].delta.content or ""
        for part in client.chat.completions.create(model="ok", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert text == "t0 t1 t2 t3 t4 "
    assert [model.id for model in client.models.list()] == ["stub-model"]


def test_openai_errors_keep_their_status(server):
    import openai

    client = openai.OpenAI(base_url=f"{server}/openai/v1", api_key=KEY)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="fail", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        list(client.chat.completions.create(model="fail", messages=[{"role": "user", "content": "hi"}], stream=True))
