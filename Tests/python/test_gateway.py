"""The `gateway` handler with real processes: `gateway --local` in front of `echo --local` upstreams
(and a scripted misbehaving one served from this process), driven by the official runpod client and
plain HTTP. Routing (`when` predicates, `input.tier`), fallbacks within a tier and to the next tier,
the breaker under a SIGKILLed upstream and its recovery, what each upstream failure comes to, and
configuration files it refuses.

Every process is started here on loopback and stopped by its PID. Gateways are stopped with SIGKILL
(their own SIGTERM shutdown is checked by `test_sigterm_stops_the_gateway`).

GATEWAY_BIN names the gateway (default: `gateway` beside ECHO_BIN).
"""
import http.server
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from workers import SERVING

ECHO = os.environ.get("ECHO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "echo"))
GATEWAY = os.environ.get("GATEWAY_BIN", os.path.join(os.path.dirname(ECHO), "gateway"))
# The gateway's own key (what its clients send) and the upstreams' key (what it sends them): different,
# so a job that reached an upstream shows the inbound credentials were not passed on.
KEY = "gateway-test-key"
UPSTREAM_KEY = "gateway-upstream-key"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
# Settings of the environment the tests run in that would change how the processes behave.
STRIPPED_PREFIXES = ("RUNPOD_", "FLEET_", "REDIS_", "RATE_LIMIT_", "GATEWAY_")
STRIPPED = {"QUEUE_URL", "ENDPOINT_ID", "ENDPOINT_API_KEY", "MAX_ATTEMPTS", "WORKER_CONCURRENCY", "PORT", "PORT_HEALTH",
            "QUEUED_INPUT_MB"}
# Loopback requests never go through a proxy the environment may name.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
STARTED = "| Started."


# MARK: helpers


class Reply:
    """An HTTP answer: status, body text and its JSON (None when it is not JSON)."""

    def __init__(self, status, body):
        self.status = status
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"HTTP {self.status}: {self.text[:600]}"


def call(method, url, body=None, key=KEY, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return Reply(response.status, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read())


def wait_until(check, timeout, what, detail=lambda: "", interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}. {detail()}")
        time.sleep(interval)


def clean_env(**settings):
    env = {name: value for name, value in os.environ.items()
           if name not in STRIPPED and not name.startswith(STRIPPED_PREFIXES)}
    env.update({name: str(value) for name, value in settings.items()})
    return env


def runsync(gateway, job_input, timeout=30):
    """POST /runsync on the gateway; the job's report (the gateway's jobs are quick: all final)."""
    reply = call("POST", f"{gateway.base}/runsync", {"input": job_input}, timeout=timeout)
    assert reply.status == 200 and reply.json, reply
    assert reply.json.get("status") in FINAL, reply
    return reply.json


class Process:
    """One `echo` or `gateway` in `--local` mode; standard error and output drained into `log` from
    the start; `port` from its "Serving the ..." line."""

    def __init__(self, name, binary, env, port=0):
        self.name = name
        self.log = []
        self.port = None
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.proc = subprocess.Popen([binary, "--local", "--port", str(port)], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        self.pid = self.proc.pid
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self._wait_ready(30)
        except BaseException:
            self.kill()
            raise

    def _drain(self):
        for line in self.proc.stdout:
            self.log.append(line)
            if not self.ready.is_set():
                match = SERVING.search(line)
                if match:
                    self.port = int(match.group(1))
                    self.ready.set()
        self.ended.set()

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.ended.is_set() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} never served (exit {self.proc.poll()}):\n{self.text}")
        self.base = f"http://127.0.0.1:{self.port}"

        def pings():
            try:
                return call("GET", f"{self.base}/ping", timeout=2).status == 200
            except OSError:
                return False

        wait_until(pings, max(1, deadline - time.monotonic()), f"{self.name} to answer /ping", lambda: self.text)

    @property
    def text(self):
        return "".join(self.log)

    @property
    def alive(self):
        return self.proc.poll() is None

    def jobs_started(self):
        return sum(STARTED in line for line in list(self.log))

    def lines(self, fragment, since=0):
        return [line for line in list(self.log)[since:] if fragment in line]

    def kill(self):
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, grace=5):
        if self.alive:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class Processes:
    """The processes a test starts; `close` stops them all by PID (echos with SIGTERM, gateways with
    SIGKILL)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def echo(self, name, port=0, concurrency=8):
        process = Process(name, ECHO, clean_env(RUNPOD_API_KEY=UPSTREAM_KEY, WORKER_CONCURRENCY=concurrency), port=port)
        self.started.append(process)
        return process

    def gateway(self, config, concurrency=16, port=0):
        path = self.tmp_path / f"gateway-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(config))
        env = clean_env(GATEWAY_CONFIG=path, RUNPOD_API_KEY=KEY, UPSTREAM_KEY=UPSTREAM_KEY, GATEWAY_OWN_KEY=KEY,
                        WORKER_CONCURRENCY=concurrency)
        process = Process("gateway", GATEWAY, env, port=port)
        self.started.append(process)
        return process

    def close(self):
        for process in self.started:
            try:
                if process.name == "gateway":
                    process.kill()
                else:
                    process.stop()
            except Exception:  # noqa: BLE001 - stop the others whatever happens to one
                pass


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()


def upstream(name, process_or_url, tier, **settings):
    url = process_or_url if isinstance(process_or_url, str) else f"{process_or_url.base}/v2/{name}"
    return {"name": name, "url": url, "tier": tier, "api_key_env": "UPSTREAM_KEY", **settings}


def error_of(report):
    """A FAILED report's error: RunPod's JSON string with error_message, or plain text."""
    error = report.get("error") or ""
    try:
        return json.loads(error).get("error_message", error)
    except (ValueError, AttributeError):
        return error


# MARK: 1. the official client, routing


def test_official_client_through_gateway_routes_by_rule_and_explicit_tier(processes, monkeypatch):
    import runpod

    chat = processes.echo("echo-chat")
    embed = processes.echo("echo-embed")
    gateway = processes.gateway({
        "upstreams": [upstream("chat", chat, "chat"), upstream("embed", embed, "embed")],
        "routes": [{"when": [{"path": "input.task", "equals": "embed"}], "tiers": ["embed"]}, {"tiers": ["chat"]}],
        "probe_interval_seconds": 1,
    })
    monkeypatch.setattr(runpod, "api_key", KEY)
    monkeypatch.setattr(runpod, "endpoint_url_base", f"{gateway.base}/v2")
    endpoint = runpod.Endpoint("gateway")

    def counts():
        return chat.jobs_started(), embed.jobs_started()

    def ran_on(before, expected):
        wait_until(lambda: counts() == expected, 5, f"job counts {expected} (chat, embed)",
                   lambda: f"before {before}, now {counts()}")

    # run_sync, default rule: the chat tier.
    before = counts()
    assert endpoint.run_sync({"task": "chat", "n": 1}, timeout=30) == {"task": "chat", "n": 1}
    ran_on(before, (before[0] + 1, before[1]))

    # run + status + output, the `when` rule: the embed tier.
    before = counts()
    job = endpoint.run({"task": "embed", "n": 2})
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    assert job.output(timeout=20) == {"task": "embed", "n": 2}
    assert job.status() == "COMPLETED"
    ran_on(before, (before[0], before[1] + 1))

    # input.tier wins over the rule, and is not passed on.
    before = counts()
    assert endpoint.run_sync({"task": "embed", "tier": "chat", "n": 3}, timeout=30) == {"task": "embed", "n": 3}
    ran_on(before, (before[0] + 1, before[1]))

    # An unknown tier: FAILED, naming it; nothing reached an upstream.
    before = counts()
    job = endpoint.run({"tier": "gold", "n": 4})
    wait_until(lambda: job.status() in FINAL, 10, "the unknown-tier job to end")
    assert job.status() == "FAILED"
    report = endpoint.rp_client.get(f"gateway/status/{job.job_id}")
    assert report["status"] == "FAILED" and "gold" in error_of(report), report
    assert endpoint.run_sync({"tier": "gold"}, timeout=30) is None  # FAILED: runpod gives no output
    time.sleep(0.2)
    assert counts() == before


# MARK: 2. a SIGKILLed upstream under load, its breaker, its recovery


def test_upstream_killed_under_load_breaker_and_recovery(processes):
    a = processes.echo("echo-a")
    b = processes.echo("echo-b")
    port_a = a.port
    cooldown = 1
    gateway = processes.gateway({
        "upstreams": [upstream("pool-a", a, "pool"), upstream("pool-b", b, "pool")],
        "routes": [{"tiers": ["pool"]}],
        "breaker": {"consecutive_failures": 3, "cooldown_seconds": cooldown},
        "probe_interval_seconds": 0.5,
    })
    results = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 4.5

    def hammer(thread):
        n = 0
        while time.monotonic() < stop_at:
            job_input = {"thread": thread, "n": n}
            sent = time.monotonic()
            try:
                reply = call("POST", f"{gateway.base}/runsync", {"input": job_input}, timeout=30)
            except Exception as error:  # noqa: BLE001 - a client-visible failure too
                reply = error
            with lock:
                results.append((sent, time.monotonic(), job_input, reply))
            n += 1

    threads = [threading.Thread(target=hammer, args=(index,), daemon=True) for index in range(8)]
    for thread in threads:
        thread.start()
    restarted = None
    try:
        time.sleep(1.0)
        assert a.jobs_started() > 0 and b.jobs_started() > 0, "both upstreams take jobs before the kill"
        mark_kill = len(gateway.log)
        killed_at = time.monotonic()
        a.kill()
        time.sleep(1.5)
        mark_restart = len(gateway.log)
        restarted_at = time.monotonic()
        restarted = processes.echo("echo-a (restarted)", port=port_a)
    finally:
        for thread in threads:
            thread.join(timeout=40)
    assert not any(thread.is_alive() for thread in threads)

    # No client saw a failure: every job completed with its own input. A job pool-a had under way
    # when it was killed lost its answer, and pool-a then refused connections: it died with the
    # job, so the gateway ran it elsewhere (at least once, as a fleet runs a dead worker's job).
    def completed(job_input, reply):
        return (isinstance(reply, Reply) and reply.status == 200 and reply.json
                and reply.json.get("status") == "COMPLETED" and reply.json.get("output") == job_input)

    failed = [(job_input, reply) for sent, done, job_input, reply in results if not completed(job_input, reply)]
    assert not failed, f"{len(failed)} of {len(results)} jobs failed as the client saw them: {failed[:5]}"

    # While pool-a was dead its breaker kept calls away: a few failed calls, not one per job.
    dead_failures = [line for line in gateway.log[mark_kill:mark_restart] if "pool-a did not take the job" in line]
    jobs_while_dead = sum(killed_at <= sent <= restarted_at for sent, _, _, _ in results)
    assert jobs_while_dead >= 40, f"only {jobs_while_dead} jobs while pool-a was dead: the load proved nothing"
    # 3 in a row open it; calls already under way (8 clients) may fail too; then one trial per cooldown.
    bound = 3 + 8 + 2 * int(1.5 / cooldown + 1)
    print(f"{len(results)} jobs, {len(failed)} failed, {len(dead_failures)} calls to the dead pool-a "
          f"in {jobs_while_dead} jobs while it was dead")
    assert len(dead_failures) <= bound, (
        f"{len(dead_failures)} calls to the dead pool-a in {jobs_while_dead} jobs:\n" + "".join(dead_failures[:30]))

    # The restarted pool-a took jobs of the load again once its cooldown had passed and a probe or
    # trial succeeded (the load ended about 2 s after the restart).
    wait_until(lambda: restarted.jobs_started() > 0, 2, "the restarted pool-a to have taken jobs",
               lambda: f"gateway log:\n{''.join(gateway.log[mark_restart:])[-3000:]}")
    # And it alone is enough: with pool-b killed, jobs still complete, on pool-a.
    b.kill()
    before = restarted.jobs_started()
    for n in range(5):
        report = runsync(gateway, {"after": "b killed", "n": n})
        assert report["status"] == "COMPLETED" and report["output"] == {"after": "b killed", "n": n}, report
    wait_until(lambda: restarted.jobs_started() >= before + 5, 5, "the 5 jobs on the restarted pool-a")


# MARK: 3. the next tier of the rule


def test_dead_tier_falls_back_to_the_next_tier_of_the_rule(processes):
    dead = processes.echo("echo-dead")
    backup = processes.echo("echo-backup")
    dead.kill()
    gateway = processes.gateway({
        "upstreams": [upstream("primary-only", dead.base + "/v2/primary", "primary"), upstream("backup", backup, "secondary")],
        "routes": [{"when": [{"path": "input.kind", "equals": "important"}], "tiers": ["primary", "secondary"]},
                   {"tiers": ["secondary"]}],
        "breaker": {"consecutive_failures": 3, "cooldown_seconds": 30},
        "probe_interval_seconds": 1,
    })
    before = backup.jobs_started()
    for n in range(6):
        report = runsync(gateway, {"kind": "important", "n": n})
        assert report["status"] == "COMPLETED" and report["output"] == {"kind": "important", "n": n}, report
    wait_until(lambda: backup.jobs_started() == before + 6, 5, "6 jobs on the backup tier")
    tried = wait_until(lambda: gateway.lines("primary-only did not take the job"), 3, "the gateway's warning", lambda: gateway.text)
    # Tried first, then (breaker open) skipped: at most consecutive_failures attempts.
    assert 1 <= len(tried) <= 3, "".join(tried)
    # An explicit tier has no fallback: the dead tier's job fails, naming why.
    report = runsync(gateway, {"tier": "primary"})
    assert report["status"] == "FAILED" and "primary" in error_of(report), report


# MARK: 4. a scripted misbehaving upstream


class Scripted:
    """An upstream speaking just enough of the endpoint API, one behaviour per endpoint id
    (`/v2/<mode>/...`); `requests[mode]` lists what it was asked."""

    def __init__(self):
        self.requests = {}
        self.lock = threading.Lock()
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, body, headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the gateway gave up on a slow answer

            def route(self, method):
                match = re.match(r"^/v2/([^/]+)/([a-z-]+)(?:/([^/?]+))?", self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if not match:
                    return self.answer(404, {"error": "no such route"})
                mode, action, job_id = match.groups()
                if action != "health":
                    with scripted.lock:
                        scripted.requests.setdefault(mode, []).append(
                            (method, action, job_id, body, self.headers.get("Authorization")))
                scripted.behave(self, mode, action, job_id, body)

            def do_GET(self):
                self.route("GET")

            def do_POST(self):
                self.route("POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def asked(self, mode, action=None):
        with self.lock:
            return [entry for entry in self.requests.get(mode, []) if action is None or entry[1] == action]

    @staticmethod
    def behave(handler, mode, action, job_id, body):
        if action == "health":
            return handler.answer(200, {"jobs": {"inQueue": 0, "inProgress": 0}, "workers": {"idle": 1, "running": 0}})
        if action == "cancel":
            return handler.answer(200, {"id": job_id, "status": "CANCELLED"})
        job = f"{mode}-{uuid.uuid4().hex[:8]}"
        if action == "runsync":
            if mode == "unavailable":
                return handler.answer(503, {"error": "no workers available"})
            if mode == "busy":
                return handler.answer(429, {"error": "too many requests"}, headers=[("Retry-After", "1")])
            if mode == "bad_request":
                return handler.answer(400, {"error": "input.prompt is required"})
            if mode == "failed":
                return handler.answer(200, {"id": job, "status": "FAILED", "error": "the handler blew up"})
            if mode == "timed_out":
                return handler.answer(200, {"id": job, "status": "IN_PROGRESS"})
            if mode == "garbage":
                return handler.answer(200, b'{"id": "x", "status": COMPLETED, <html>')
            if mode == "slow":
                time.sleep(3)  # beyond its timeout_seconds (1), whatever ?wait= asked
                return handler.answer(200, {"id": job, "status": "COMPLETED", "output": {"late": True}})
            if mode == "stuck":
                return handler.answer(200, {"id": job, "status": "IN_PROGRESS"})
        if action == "status":
            if mode == "timed_out":
                return handler.answer(200, {"id": job_id, "status": "TIMED_OUT", "error": "executionTimeout passed"})
            return handler.answer(200, {"id": job_id, "status": "IN_PROGRESS"})
        return handler.answer(404, {"error": f"{mode} does not do {action}"})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


MODES = ["unavailable", "busy", "bad_request", "failed", "timed_out", "garbage", "slow", "stuck"]


@pytest.fixture(scope="module")
def scripted_gateway(tmp_path_factory):
    """A gateway whose rule for `input.mode == <mode>` lists the tiers [<mode>, healthy]: tier <mode>
    holds only the scripted upstream behaving so, tier healthy one echo."""
    scripted = Scripted()
    started = Processes(tmp_path_factory.mktemp("gateway-scripted"))
    try:
        healthy = started.echo("echo-healthy")
        upstreams = [upstream(f"scripted-{mode}", f"{scripted.base}/v2/{mode}", mode, timeout_seconds=1 if mode in ("slow", "stuck") else 10)
                     for mode in MODES]
        gateway = started.gateway({
            "upstreams": upstreams + [upstream("healthy", healthy, "healthy")],
            "routes": [{"when": [{"path": "input.mode", "equals": mode}], "tiers": [mode, "healthy"]} for mode in MODES]
            + [{"tiers": ["healthy"]}],
            "probe_interval_seconds": 1,
        })
        yield scripted, gateway, healthy
    finally:
        started.close()
        scripted.close()


# mode: (falls back to the healthy echo, a fragment of the FAILED job's error otherwise)
EXPECTED = {
    "unavailable": (True, None),
    "busy": (True, None),
    "bad_request": (False, "input.prompt is required"),
    "failed": (False, "the handler blew up"),
    "timed_out": (True, None),
    "garbage": (False, "not JSON"),
    "slow": (False, None),
    "stuck": (False, "in time"),
}


@pytest.mark.parametrize("mode", MODES)
def test_misbehaving_upstream(scripted_gateway, mode):
    scripted, gateway, healthy = scripted_gateway
    falls_back, fragment = EXPECTED[mode]
    before = healthy.jobs_started()
    job_input = {"mode": mode, "payload": [1, 2, 3]}
    started = time.monotonic()
    report = runsync(gateway, job_input)
    elapsed = time.monotonic() - started

    runsyncs = scripted.asked(mode, "runsync")
    assert len(runsyncs) == 1, f"{mode}: the scripted upstream was called {len(runsyncs)} times: {runsyncs}"
    _, _, _, body, authorization = runsyncs[0]
    assert body == {"input": job_input}, body
    assert authorization == f"Bearer {UPSTREAM_KEY}", "the upstream's own key, never the caller's"
    if falls_back:
        assert report["status"] == "COMPLETED" and report["output"] == job_input, f"{mode}: {report}"
        wait_until(lambda: healthy.jobs_started() == before + 1, 5, f"{mode}: the fallback on the healthy echo")
        wait_until(lambda: gateway.lines(f"scripted-{mode} did not take the job"), 3, f"{mode}: the gateway's warning",
                   lambda: gateway.text[-2000:])
    else:
        assert report["status"] == "FAILED", f"{mode}: {report}"
        if fragment:
            assert fragment in error_of(report), f"{mode}: {report}"
        time.sleep(0.2)
        assert healthy.jobs_started() == before, f"{mode}: the job was sent on to the healthy tier too"
    if mode in ("slow", "stuck"):
        # timeout_seconds 1 bounds the call: the gateway does not wait out the upstream's 3 s.
        assert elapsed < 2.5, f"{mode}: the job took {elapsed:.2f} s with timeout_seconds 1: {report}"
    if mode == "stuck":
        wait_until(lambda: scripted.asked(mode, "cancel"), 3, "the gateway to cancel the upstream's job")
        cancelled = scripted.asked(mode, "cancel")[0][2]
        assert cancelled.startswith("stuck-"), cancelled
    if mode == "timed_out":
        assert scripted.asked(mode, "status"), "the gateway polled the IN_PROGRESS job"
    if mode == "busy":
        # After the 429 the upstream is left alone for a while: the next job goes straight to healthy.
        again = runsync(gateway, dict(job_input, n=2))
        assert again["status"] == "COMPLETED" and again["output"] == dict(job_input, n=2), again
        assert len(scripted.asked(mode, "runsync")) == 1, "called again right after its 429"

    # The gateway keeps serving.
    assert gateway.alive
    plain = runsync(gateway, {"after": mode})
    assert plain["status"] == "COMPLETED" and plain["output"] == {"after": mode}, plain


# MARK: 5. configuration files it refuses


def _upstreams(count=2):
    return [{"name": f"u{index}", "url": f"http://127.0.0.1:9/v2/u{index}", "tier": "main"} for index in range(count)]


BAD_CONFIGS = {
    "not-json": ('{"upstreams": [', ["not JSON"]),
    "unknown-field": ({"upstreams": [dict(_upstreams(1)[0], colour="red")]}, ["upstreams[0].colour"]),
    "zero-weight": ({"upstreams": _upstreams(2) + [dict(_upstreams(3)[2], weight=0)]}, ["upstreams[2].weight"]),
    "unknown-tier": ({"upstreams": _upstreams(2), "routes": [{"tiers": ["main", "gold"]}]}, ["routes[0].tiers[1]", "gold"]),
    "every-problem": ({"upstreams": _upstreams(1) + [dict(_upstreams(2)[1], weight=0, colour="red")],
                       "routes": [{"tiers": ["gold"]}], "breaker": {"cooldown_seconds": -1}},
                      ["upstreams[1].weight", "upstreams[1].colour", "routes[0].tiers[0]", "breaker.cooldown_seconds"]),
    "unset": (None, ["GATEWAY_CONFIG"]),
    "missing-file": ("MISSING", ["GATEWAY_CONFIG", "cannot be read"]),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_1_naming_the_field(tmp_path, case):
    content, fragments = BAD_CONFIGS[case]
    env = clean_env(RUNPOD_API_KEY=KEY)
    if content == "MISSING":
        env["GATEWAY_CONFIG"] = str(tmp_path / "no-such-file.json")
    elif content is not None:
        path = tmp_path / "gateway.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        env["GATEWAY_CONFIG"] = str(path)
    process = subprocess.Popen([GATEWAY, "--local", "--port", "0"], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode == 1, f"exit {process.returncode}\n{out}\n{err}"
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in the standard error:\n{err}"


# MARK: shutdown


def test_sigterm_stops_the_gateway(processes):
    echo = processes.echo("echo-shutdown")
    gateway = processes.gateway({"upstreams": [upstream("only", echo, "main")], "probe_interval_seconds": 1})
    assert runsync(gateway, {"before": "sigterm"})["status"] == "COMPLETED"
    os.kill(gateway.pid, signal.SIGTERM)
    try:
        gateway.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("the gateway was still running 5 s after one SIGTERM:\n" + gateway.text[-2000:])
    assert gateway.proc.returncode == 0, gateway.text[-2000:]


# MARK: 6. MCP: the upstreams' tools through the gateway's own /mcp and `--mcp`


MCP_MODES = ["legacy", "auto"]  # the official client's protocol eras: initialize first, or server/discover first


def mcp_upstream(name, process_or_url):
    url = process_or_url if isinstance(process_or_url, str) else f"{process_or_url.base}/mcp"
    return {"name": name, "mcp_url": url, "api_key_env": "UPSTREAM_KEY"}


def mcp_client(gateway, mode="legacy"):
    """The official `mcp` client of the gateway's /mcp (streamable HTTP), with the gateway's key."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    return Client(streamable_http_client(f"{gateway.base}/mcp", http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"})),
                  mode=mode)


def mcp_run(body):
    import anyio

    return anyio.run(body)


def tool_names(gateway):
    """The gateway's tools as a new client sees them (a new one each time: `auto` caches lists)."""
    async def body():
        async with mcp_client(gateway) as client:
            return [tool.name for tool in (await client.list_tools()).tools]
    return mcp_run(body)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mcp_lists_and_forwards_upstream_tools_with_progress(processes):
    alpha = processes.echo("echo-alpha")
    beta = processes.echo("echo-beta")
    gateway = processes.gateway({"upstreams": [mcp_upstream("alpha", alpha), mcp_upstream("beta-two", beta)]})
    # Read at start: listed once the gateway serves (a short wait covers a slow first read).
    wait_until(lambda: "beta-two_echo" in tool_names(gateway), 3, "the upstream tools to be listed", lambda: gateway.text[-2000:])

    for mode in MCP_MODES:
        async def body():
            async with mcp_client(gateway, mode) as client:
                names = [tool.name for tool in (await client.list_tools()).tools]
                assert sorted(names) == ["alpha_echo", "beta-two_echo", "gateway"], names
                assert names[0] == "gateway", names

                for name, echo, other in (("alpha_echo", alpha, beta), ("beta-two_echo", beta, alpha)):
                    before = (echo.jobs_started(), other.jobs_started())
                    arguments = {"via": name, "mode": mode, "nested": {"b": [1, 2]}}
                    result = await client.call_tool(name, arguments)
                    assert not result.is_error, result
                    assert result.structured_content == arguments, result
                    assert json.loads(result.content[0].text) == arguments, result
                    # Reached its own upstream (the upstream's key accepted), not the other.
                    wait_until(lambda: echo.jobs_started() == before[0] + 1, 3, f"{name} to run on {echo.name}")
                    assert other.jobs_started() == before[1], f"{name} ran on {other.name} too"

                seen = []

                async def on_progress(progress, total, message):
                    seen.append((progress, message))

                result = await client.call_tool("beta-two_echo", {"progress": 3}, progress_callback=on_progress)
                assert not result.is_error and result.structured_content == {"progress": 3}, result
                assert [progress for progress, _ in seen] == [1, 2, 3], seen
                assert json.loads(seen[0][1]) == {"step": 0}, seen
        mcp_run(body)


def test_mcp_upstream_started_after_the_gateway_is_listed_soon(processes):
    alpha = processes.echo("echo-alpha")
    port = free_port()  # nothing listens there yet: refused at the gateway's start
    gateway = processes.gateway({"upstreams": [mcp_upstream("alpha", alpha), mcp_upstream("late", f"http://127.0.0.1:{port}/mcp")]})
    wait_until(lambda: gateway.lines("the tools of late could not be listed"), 5, "the gateway's warning about late", lambda: gateway.text)
    assert tool_names(gateway) == ["gateway", "alpha_echo"]
    late = processes.echo("echo-late", port=port)
    started = time.monotonic()
    wait_until(lambda: "late_echo" in tool_names(gateway), 5, "late's tools to be listed", lambda: gateway.text[-2000:], interval=0.2)
    print(f"late_echo listed {time.monotonic() - started:.2f} s after late started")

    async def body():
        async with mcp_client(gateway) as client:
            result = await client.call_tool("late_echo", {"late": True})
            assert not result.is_error and result.structured_content == {"late": True}, result
    mcp_run(body)
    wait_until(lambda: late.jobs_started() == 1, 3, "the call to run on late")


def test_mcp_dead_upstream_is_an_error_naming_it_and_the_others_still_serve(processes):
    from mcp.shared.exceptions import MCPError

    alpha = processes.echo("echo-alpha")
    doomed = processes.echo("echo-doomed")
    gateway = processes.gateway({"upstreams": [mcp_upstream("alpha", alpha), mcp_upstream("doomed", doomed)],
                                 "breaker": {"consecutive_failures": 2, "cooldown_seconds": 30}})
    wait_until(lambda: "doomed_echo" in tool_names(gateway), 3, "the upstream tools to be listed", lambda: gateway.text[-2000:])
    doomed.kill()

    async def failure_text(client, arguments):
        """The failed call's message: an isError result's text, or a JSON-RPC error's."""
        try:
            result = await client.call_tool("doomed_echo", arguments)
        except MCPError as error:
            return error.error.message
        assert result.is_error, f"a call to the dead upstream succeeded: {result}"
        return result.content[0].text

    for mode in MCP_MODES:
        async def body():
            async with mcp_client(gateway, mode) as client:
                text = await failure_text(client, {"n": 1})
                assert "doomed" in text, text
                assert (await client.call_tool("alpha_echo", {"after": "doomed", "mode": mode})).structured_content == {"after": "doomed", "mode": mode}
                # The connection and the listing still serve the live upstream.
                names = [tool.name for tool in (await client.list_tools()).tools]
                assert "alpha_echo" in names and "gateway" in names, names
        mcp_run(body)

    # Those calls counted for doomed's breaker (2 failures in a row): now open, it says so.
    async def breaker():
        async with mcp_client(gateway) as client:
            text = await failure_text(client, {"n": 3})
            assert "doomed" in text and "breaker" in text, text
            assert (await client.call_tool("alpha_echo", {"n": 4})).structured_content == {"n": 4}
    mcp_run(breaker)
    assert gateway.alive


def test_mcp_over_stdio_lists_and_forwards_upstream_tools(processes, tmp_path):
    alpha = processes.echo("echo-alpha")
    path = tmp_path / "gateway-stdio.json"
    path.write_text(json.dumps({"upstreams": [mcp_upstream("alpha", alpha)]}))
    stderr_path = tmp_path / "gateway-stdio.log"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([GATEWAY, "--mcp"], env=clean_env(GATEWAY_CONFIG=path, UPSTREAM_KEY=UPSTREAM_KEY),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()

    def send(message):
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()

    def receive(timeout=10):
        try:
            return json.loads(lines.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"no answer on standard output in {timeout} s (exit {process.poll()}):\n{stderr_path.read_text()[-2000:]}")

    def reply_to(request_id, notes=None):
        while True:
            message = receive()
            if message.get("id") == request_id and "method" not in message:
                return message
            if notes is not None:
                notes.append(message)

    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
        assert reply_to(1)["result"]["serverInfo"]["name"] == "gateway"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        # The list is read at start, alongside the first requests: asked again until it is there.
        next_id = [2]

        def listed():
            next_id[0] += 1
            send({"jsonrpc": "2.0", "id": next_id[0], "method": "tools/list"})
            return [tool["name"] for tool in reply_to(next_id[0])["result"]["tools"]]

        names = wait_until(lambda: (lambda names: names if "alpha_echo" in names else None)(listed()), 5, "alpha_echo over stdio",
                           lambda: stderr_path.read_text()[-2000:], interval=0.1)
        assert names == ["gateway", "alpha_echo"], names

        before = alpha.jobs_started()
        notes = []
        send({"jsonrpc": "2.0", "id": 100, "method": "tools/call",
              "params": {"name": "alpha_echo", "arguments": {"progress": 2, "over": "stdio"}, "_meta": {"progressToken": "p-1"}}})
        answer = reply_to(100, notes)
        assert answer["result"]["structuredContent"] == {"progress": 2, "over": "stdio"}, answer
        assert answer["result"].get("isError") in (None, False), answer
        progress = [note["params"] for note in notes if note.get("method") == "notifications/progress"]
        assert [(p["progressToken"], p["progress"]) for p in progress] == [("p-1", 1), ("p-1", 2)], notes
        wait_until(lambda: alpha.jobs_started() == before + 1, 3, "the call to run on alpha")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# MARK: a gateway that is its own upstream

def test_gateway_pointing_at_itself_refuses_at_once(processes):
    """An upstream whose url (and openai_url) is the gateway itself, with the gateway's own key: the
    job comes back carrying the gateway's id in X-Gateway-Chain and is refused there, so the
    client gets an error naming the loop within a second instead of slots filling until timeouts."""
    port = free_port()
    gateway = processes.gateway({"upstreams": [
        {"name": "self", "url": f"http://127.0.0.1:{port}/v2/gateway", "openai_url": f"http://127.0.0.1:{port}/openai/v1",
         "mcp_url": f"http://127.0.0.1:{port}/mcp", "models": ["m"], "api_key_env": "GATEWAY_OWN_KEY", "timeout_seconds": 30},
    ]}, concurrency=4, port=port)
    for _ in range(6):  # more than its slots: none is left held
        started = time.monotonic()
        reply = call("POST", f"{gateway.base}/runsync", {"input": {"x": 1}})
        assert reply.status == 200 and reply.json["status"] == "FAILED", reply
        assert "came back to this gateway" in reply.json["error"], reply
        assert time.monotonic() - started < 5
    reply = call("POST", f"{gateway.base}/openai/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status == 508 and "came back to this gateway" in reply.json["error"]["message"], reply
    assert reply.json["error"]["type"] == "loop_detected", reply
    # A chain no gateway wrote (an id of 9,000 bytes) is refused, in each route's shape, without echoing it.
    for path, body in (("/runsync", {"input": {"x": 1}}), ("/openai/v1/chat/completions", {"model": "m", "messages": []})):
        request = urllib.request.Request(f"{gateway.base}{path}", data=json.dumps(body).encode(), method="POST", headers={
            "Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "X-Gateway-Chain": "x" * 9000})
        try:
            with OPENER.open(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        assert status == 400 and "no gateway wrote" in text and len(text) < 1000, (path, status, text[:300])
        if path.startswith("/openai"):
            assert json.loads(text)["error"]["type"] == "invalid_request_error", text
    # Its own MCP server as an upstream: the listing is refused, only the gateway's own tool is offered.
    wait_until(lambda: any("came back to this gateway" in line for line in gateway.log), 10, "the refused MCP listing in the log",
               lambda: "".join(gateway.log[-20:]))
    listed = call("POST", f"{gateway.base}/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
    assert [tool["name"] for tool in listed.json["result"]["tools"]] == ["gateway"], listed


# MARK: the official openai client: routing by model, fallback, streams

def test_openai_client_through_gateway_routes_by_model_and_falls_back(processes):
    """The openai SDK against the gateway's /openai/v1: chat completions (plain and streamed) go to
    an upstream serving the model; an upstream that refuses connections is passed over for another
    serving it; a model nobody serves is a 404 naming the models that are served."""
    import openai
    import stub_openai

    stub = stub_openai.serve()
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        live = f"http://127.0.0.1:{stub.server_address[1]}/v1"
        dead = f"http://127.0.0.1:{free_port()}/v1"
        gateway = processes.gateway({"upstreams": [
            {"name": "dead", "openai_url": dead, "models": ["ok"], "api_key_env": "UPSTREAM_KEY"},
            {"name": "live", "openai_url": live, "models": ["ok", "other", "large"], "api_key_env": "UPSTREAM_KEY"},
        ], "breaker": {"consecutive_failures": 2, "cooldown_seconds": 30}})
        client = openai.OpenAI(base_url=f"{gateway.base}/openai/v1", api_key=KEY, max_retries=0)
        for _ in range(6):
            reply = client.chat.completions.create(model="ok", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content == "hello"
        text = "".join(
            part.choices[0].delta.content or ""
            for part in client.chat.completions.create(model="ok", messages=[{"role": "user", "content": "hi"}], stream=True))
        assert text == "t0 t1 t2 t3 t4 "
        assert sorted(model.id for model in client.models.list()) == ["large", "ok", "other"]
        # An answer over the platform's 1 MiB chunk limit: that rule is the queue platform's
        # stream endpoint's; an answer the gateway serves itself is bounded by its response.
        large = client.chat.completions.create(model="large", messages=[{"role": "user", "content": "hi"}])
        assert large.choices[0].message.content == "x" * stub_openai.LARGE_COMPLETION
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
        assert "nope" in str(missing.value)
        # The dead upstream's breaker opened after its failures: calls went to it at most twice.
        assert len([line for line in gateway.log if "dead did not take" in line]) <= 2
    finally:
        stub.shutdown()
