"""scripts/runpod-deploy against a fake of RunPod's REST API (v1 templates and endpoints, v2
serverless) that checks the key and the required fields and records every call; and
scripts/check-templates.py on the repository's templates."""
import json
import os
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer

import pytest

from stub_openai import JSONRequestHandler

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DEPLOY = os.path.join(ROOT, "scripts", "runpod-deploy")
REQUIRED = {"/templates": ["name", "imageName"], "/endpoints": ["templateId"], "/v2/serverless": ["name", "type", "scaling", "templateId"]}


class FakeRunPod:
    def __init__(self):
        self.calls = []
        self.items = {"/templates": [], "/endpoints": [], "/v2/serverless": []}
        fake = self

        class Handler(JSONRequestHandler):
            answer = JSONRequestHandler.send_json

            def handle_any(self, method):
                body = None
                if method != "GET":
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
                fake.calls.append((method, self.path, body))
                if self.headers.get("Authorization") != "Bearer rk-test":
                    return self.answer(401, {"error": "invalid api key"})
                collection = next((key for key in fake.items if self.path == key or self.path.startswith(key + "/")), None)
                if collection is None:
                    return self.answer(404, {"error": f"no route {self.path}"})
                if method == "GET" and self.path == collection:
                    return self.answer(200, fake.items[collection])
                missing = [field for field in REQUIRED[collection] if field not in (body or {})]
                if missing:
                    return self.answer(400, {"error": f"missing {missing}"})
                if self.path == collection and method == "POST":
                    item = dict(body, id=f"{collection.strip('/').replace('/', '-')}-{len(fake.items[collection]) + 1}")
                    fake.items[collection].append(item)
                    return self.answer(200, item)
                item_id = self.path[len(collection) + 1:].removesuffix("/update")
                for item in fake.items[collection]:
                    if item["id"] == item_id:
                        item.update(body)
                        return self.answer(200, item)
                return self.answer(404, {"error": f"no {item_id}"})

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_PATCH(self):
                self.handle_any("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def writes(self):
        return [(method, path) for method, path, _ in self.calls if method != "GET"]


@pytest.fixture
def fake():
    server = FakeRunPod()
    yield server
    server.server.shutdown()


def deploy(fake, *args, key="rk-test"):
    env = dict(os.environ, RUNPOD_REST_URL=fake.base, RUNPOD_API_URL=fake.base, IMAGE_REGISTRY="docker.io/acme")
    env.pop("RUNPOD_API_KEY", None)
    if key:
        env["RUNPOD_API_KEY"] = key
    return subprocess.run([sys.executable, DEPLOY, *args], env=env, capture_output=True, text=True, timeout=60)


def test_queue_deploy_is_idempotent(fake):
    first = deploy(fake, "orchestrator", "--env", "DATABASE_URL=postgresql://u:p@db/leads?sslmode=require")
    assert first.returncode == 0, first.stderr
    assert fake.writes() == [("POST", "/templates"), ("POST", "/endpoints")]
    template = fake.items["/templates"][0]
    assert template["imageName"] == "docker.io/acme/orchestrator:latest" and template["isServerless"] is True
    assert template["env"]["DATABASE_URL"].startswith("postgresql://") and template["env"]["QUALIFICATION_THRESHOLD"] == "0.5"
    endpoint = fake.items["/endpoints"][0]
    assert endpoint["templateId"] == template["id"] and endpoint["scalerType"] == "QUEUE_DELAY" and endpoint["executionTimeoutMs"] == 600000
    assert "endpoint id: endpoints-1" in first.stdout and "https://api.runpod.ai/v2/endpoints-1/runsync" in first.stdout

    fake.calls.clear()
    second = deploy(fake, "orchestrator", "--env", "DATABASE_URL=postgresql://u:p@db/leads?sslmode=require")
    assert second.returncode == 0 and fake.writes() == [], "a second run changes nothing"
    assert "unchanged" in second.stdout

    fake.calls.clear()
    third = deploy(fake, "orchestrator", "--image", "ghcr.io/acme/orchestrator:v2", "--env", "DATABASE_URL=postgresql://u:p@db/leads?sslmode=require")
    assert third.returncode == 0 and fake.writes() == [("POST", "/templates/templates-1/update")]
    assert "updated imageName" in third.stdout


def test_load_balancer_and_volume(fake):
    missing_volume = deploy(fake, "memory", "--load-balancer")
    assert missing_volume.returncode == 2 and "--network-volume" in missing_volume.stderr
    result = deploy(fake, "memory", "--load-balancer", "--network-volume", "vol-1")
    assert result.returncode == 0, result.stderr
    template = next(item for item in fake.items["/templates"] if item["name"] == "swift-memory-lb")
    assert template["env"]["PORT"] == "80" and template["ports"] == ["80/http"] and template["volumeMountPath"] == "/runpod-volume"
    endpoint = fake.items["/v2/serverless"][0]
    assert endpoint["type"] == "LOAD_BALANCER" and endpoint["scaling"]["type"] == "REQUEST_COUNT" and endpoint["networkVolumes"] == ["vol-1"]
    assert "https://v2-serverless-1.api.runpod.ai/mcp" in result.stdout
    fake.calls.clear()
    assert deploy(fake, "memory", "--load-balancer", "--network-volume", "vol-1").returncode == 0 and fake.writes() == []


def test_errors_are_named(fake):
    no_key = deploy(fake, "echo", key=None)
    assert no_key.returncode == 2 and "RUNPOD_API_KEY is not set" in no_key.stderr
    wrong_key = deploy(fake, "echo", key="rk-wrong")
    assert wrong_key.returncode == 2 and "401" in wrong_key.stderr and "check RUNPOD_API_KEY" in wrong_key.stderr
    unknown = deploy(fake, "nothing")
    assert unknown.returncode == 2 and "the handlers are" in unknown.stderr
    bad_env = deploy(fake, "echo", "--env", "NOT_READ=1")
    assert bad_env.returncode == 2 and "does not read NOT_READ" in bad_env.stderr
    assert fake.writes() == []


def test_templates_are_valid():
    checked = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check-templates.py")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
