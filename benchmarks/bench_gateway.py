#!/usr/bin/env python3
"""Gateway benchmark (issue 29), one run on one machine: the release `gateway --local` against the
upstream called directly and against LiteLLM's proxy, every process on loopback.

1. Overhead over calling the upstream directly: POST /runsync of a no-op echo job through the gateway
   (one `echo --local` upstream) against the same `echo --local` called straight.
   - Throughput: wrk -t1 -c16 (gateway_runsync.lua checks every answer is COMPLETED with the echoed
     input), in BENCH_PAIRS pairs of BENCH_PAIR_SECONDS rounds side by side, the order alternating;
     the gateway's share of the direct rate is the median pair's. Goal: ≥ 70 %.
   - p50: sequential requests from one Python client (http.client, one kept-alive connection), in
     BENCH_ROUNDS alternating rounds of BENCH_ROUND_REQUESTS; the difference of the medians of all
     requests, and the median round's difference. Goal: ≤ +0.3 ms. wrk's p50 under load is shown too.
2. Chat completions (non-streamed) through our gateway (/openai/v1/chat/completions, two upstreams
   serving the model) against LiteLLM's proxy (a router with two deployments of the model, retries and
   a fallback group), both in front of the same two stub OpenAI upstreams: req/s and p99, wrk -t1 -c16
   BENCH_SECONDS (gateway_chat.lua checks every answer is a completion). Goals: ours ≥ 10× LiteLLM's
   req/s, p99 ≤ 1/5 of LiteLLM's.
   The stubs are `fake-upstream llm` (Fakes/StubLLM, Swift, built by run.sh): Tests/python/stub_openai.py
   (ThreadingHTTPServer) answers a few thousand requests/s, which would cap our gateway below what
   it does and measure the stub instead. Its GET /_stats counts the completions each stub answered.
3. One stub SIGKILLed in the middle of a BENCH_SECONDS wrk run: the client requests that failed (a bad
   answer or a socket error), for each. Goal: zero for ours.
4. The breaker: from the stub's death to its breaker opening (ours: the gateway's WARN lines "<upstream>
   did not take the ... request", read with the time they arrive; the calls the dead upstream was still
   given are those lines), and from its return (the stub restarted on the same port, 2 s into another
   wrk run) to the first completion it answers again (its /_stats, read every 10 ms). The same for the
   endpoint API: two `echo --local` upstreams in one tier, /runsync, one killed and restarted (its
   /health's jobs.completed shows work reaching it again).

Environment: BENCH_SECONDS (10, at most 10), BENCH_PAIRS (5), BENCH_PAIR_SECONDS (3), BENCH_ROUNDS (5),
BENCH_ROUND_REQUESTS (400), BENCH_COOLDOWN (breaker cooldown_seconds, 2), BENCH_PROBE_INTERVAL
(probe_interval_seconds, 1), BENCH_LITELLM_WORKERS (LiteLLM's --num_workers: one per CPU, its best here; its default is 1),
BENCH_ONLY (overhead|openai|endpoint: one part only), BENCH_PYTHON (the venv's python, for LiteLLM).
Usage: benchmarks/run.sh gateway
"""
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fleet import cpu_description, percentile  # noqa: E402
from bench_server import PYTHON, RELEASE, ROOT, free_port, quiet_env  # noqa: E402

BENCH_DIR = os.path.join(ROOT, "benchmarks")
ECHO = os.path.join(RELEASE, "echo")
GATEWAY = os.path.join(RELEASE, "gateway")
STUB = os.path.join(RELEASE, "fake-upstream")
RUNSYNC_LUA = os.path.join(BENCH_DIR, "gateway_runsync.lua")
CHAT_LUA = os.path.join(BENCH_DIR, "gateway_chat.lua")
SECONDS = min(10, int(os.environ.get("BENCH_SECONDS", "10")))
PAIRS = int(os.environ.get("BENCH_PAIRS", "5"))
PAIR_SECONDS = min(10, int(os.environ.get("BENCH_PAIR_SECONDS", "3")))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
ROUND_REQUESTS = int(os.environ.get("BENCH_ROUND_REQUESTS", "400"))
COOLDOWN = float(os.environ.get("BENCH_COOLDOWN", "2"))
PROBE_INTERVAL = float(os.environ.get("BENCH_PROBE_INTERVAL", "1"))
LITELLM_WORKERS = int(os.environ.get("BENCH_LITELLM_WORKERS", str(os.cpu_count() or 1)))
ONLY = os.environ.get("BENCH_ONLY", "")
CONNECTIONS = 16
WRK_TIMEOUT = "5s"
RESTART_AFTER = 2.0
GATEWAY_CONCURRENCY = 32
MODEL = "bench-model"
GATEWAY_KEY = "bench-gateway-key"
UPSTREAM_KEY = "bench-upstream-key"
LITELLM_KEY = "sk-bench-" + "0123456789abcdef" * 2
BREAKER = {"consecutive_failures": 5, "cooldown_seconds": COOLDOWN}
JOB = {"input": {"prompt": "hello", "n": 1}}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}


# MARK: Processes

class Proc:
    """One process in a session of its own (a SIGKILL takes its children too). Its output goes to a
    log file; with `capture`, through a pipe, each line also kept with the time it arrived."""

    def __init__(self, name, args, env, directory, capture=False):
        self.name = name
        self.path = os.path.join(directory, f"{name}.log")
        self.lines = []
        log = open(self.path, "ab")
        if capture:
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            self.reader = threading.Thread(target=self._drain, args=(log,), daemon=True)
            self.reader.start()
        else:
            try:
                self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            finally:
                log.close()
        self.pid = self.proc.pid

    def _drain(self, log):
        with log:
            for raw in self.proc.stdout:
                self.lines.append((time.monotonic(), raw.decode(errors="replace")))
                log.write(raw)
                log.flush()

    def check(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, lines=20):
        try:
            with open(self.path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def kill(self):
        """SIGKILL to its process group; returns once it is reaped."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Running:
    """Every process the benchmark starts, stopped by pid (`stop`, and in any case at the end)."""

    def __init__(self, directory):
        self.directory = directory
        self.procs = []

    def start(self, name, args, env, capture=False):
        proc = Proc(name, args, env, self.directory, capture)
        self.procs.append(proc)
        return proc

    def stop(self, *procs):
        for proc in procs or list(self.procs):
            proc.stop()
            if proc in self.procs:
                self.procs.remove(proc)


def wait_until(condition, timeout, what, proc=None, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.check()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}"
                               + (f"; {proc.name}'s log:\n{proc.tail()}" if proc else ""))
        time.sleep(interval)


# MARK: HTTP

def request(port, method, path, body=None, key=None, timeout=5):
    """(status, parsed JSON or raw bytes) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data
    finally:
        connection.close()


def answers(port, method, path, body, key, check):
    try:
        status, value = request(port, method, path, body, key)
        return status == 200 and check(value)
    except (OSError, http.client.HTTPException):
        return False


def completed(value):
    return isinstance(value, dict) and value.get("status") == "COMPLETED" and value.get("output") == JOB["input"]


def is_completion(value):
    return isinstance(value, dict) and value.get("object") == "chat.completion" and bool(value.get("choices"))


def stub_calls(port):
    """Completions a `fake-upstream llm` has answered (None when it does not answer)."""
    try:
        status, value = request(port, "GET", "/_stats", timeout=1)
        return value["calls"] if status == 200 else None
    except (OSError, http.client.HTTPException, KeyError, TypeError):
        return None


def echo_completed(port):
    """Jobs an `echo --local` has completed, from its /health (None when it does not answer)."""
    try:
        status, value = request(port, "GET", "/health", key=UPSTREAM_KEY, timeout=1)
        return value["jobs"]["completed"] if status == 200 else None
    except (OSError, http.client.HTTPException, KeyError, TypeError):
        return None


def sequential(port, path, body, key, count):
    """Latencies (s) of count requests one after another on one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    payload = json.dumps(body)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    samples = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
            samples.append(time.perf_counter() - start)
            if response.status != 200 or not completed(json.loads(data)):
                raise RuntimeError(f"POST {path} on port {port}: HTTP {response.status}: {data[:400]!r}")
    finally:
        connection.close()
    return samples


# MARK: wrk

def wrk_command(url, script, seconds, connections=CONNECTIONS):
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT, "--latency", "-s", script, url]


def wrk_env(key):
    return dict(os.environ, BENCH_AUTHORIZATION=f"Bearer {key}", BENCH_MODEL=MODEL)


def parse_wrk(out):
    def latency(label):
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"bad answers: (\d+)", out)
    sockets = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if match:
        sockets = dict(zip(sockets, map(int, match.groups())))
    if not rate or not bad:
        raise RuntimeError(f"wrk printed no figures:\n{out}")
    return {"rate": float(rate.group(1)), "requests": int(total.group(1)) if total else 0,
            "p50": latency("50"), "p99": latency("99"), "bad": int(bad.group(1)), "sockets": sockets,
            "socket_errors": sum(sockets.values()), "samples": re.findall(r"^bad answer: .*$", out, re.M)}


def wrk(url, script, key, seconds=SECONDS, warm_up=0):
    if warm_up:
        subprocess.run(wrk_command(url, script, warm_up), capture_output=True, env=wrk_env(key))
    out = subprocess.run(wrk_command(url, script, seconds), capture_output=True, text=True, env=wrk_env(key))
    return parse_wrk(out.stdout + out.stderr)


class BackgroundWrk:
    """A wrk run going on while the benchmark kills or restarts an upstream."""

    def __init__(self, url, script, key, seconds=SECONDS):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(wrk_command(url, script, seconds), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=wrk_env(key))

    def sleep_until(self, offset):
        time.sleep(max(0.0, self.started + offset - time.monotonic()))

    def result(self):
        try:
            out, _ = self.proc.communicate(timeout=SECONDS + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise RuntimeError(f"wrk did not end:\n{out}") from None
        self.ended = time.monotonic()
        return parse_wrk(out)


def failures(result):
    return result["bad"] + result["socket_errors"]


# MARK: Servers

def start_echo(run, name, port=None):
    port = port or free_port()
    proc = run.start(name, [ECHO, "--local", "--port", str(port)],
                     quiet_env(WORKER_CONCURRENCY="16", RUNPOD_API_KEY=UPSTREAM_KEY))
    wait_until(lambda: answers(port, "POST", "/runsync", JOB, UPSTREAM_KEY, completed), 60, f"{name} to answer /runsync", proc)
    return proc, port


def start_stub(run, name, port=None):
    port = port or free_port()
    proc = run.start(name, [STUB, "llm", "--port", str(port)], quiet_env())
    wait_until(lambda: stub_calls(port) is not None, 30, f"{name} to answer /_stats", proc, interval=0.01)
    return proc, port


def start_gateway(run, name, config, check_path, check_body, check):
    path = os.path.join(run.directory, f"{name}.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    port = free_port()
    proc = run.start(name, [GATEWAY, "--local", "--port", str(port)],
                     quiet_env(GATEWAY_CONFIG=path, RUNPOD_API_KEY=GATEWAY_KEY, UPSTREAM_KEY=UPSTREAM_KEY,
                               WORKER_CONCURRENCY=str(GATEWAY_CONCURRENCY), RUNPOD_LOG_LEVEL="WARN"),
                     capture=True)
    wait_until(lambda: answers(port, "POST", check_path, check_body, GATEWAY_KEY, check), 60, f"{name} to answer {check_path}", proc)
    return proc, port


def litellm_config(port_a, port_b):
    """Two deployments of MODEL (one per stub), load-balanced; retries within the group, cooldowns of
    failing deployments, and a fallback group (the same two stubs) after the retries."""
    deployment = lambda name, port: {  # noqa: E731
        "model_name": name,
        "litellm_params": {"model": f"openai/{MODEL}", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "stub-key"}}
    return {
        "model_list": [deployment(MODEL, port_a), deployment(MODEL, port_b),
                       deployment(f"{MODEL}-fallback", port_a), deployment(f"{MODEL}-fallback", port_b)],
        "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 2, "retry_after": 0, "allowed_fails": 3,
                            "cooldown_time": COOLDOWN, "fallbacks": [{MODEL: [f"{MODEL}-fallback"]}]},
        "litellm_settings": {"set_verbose": False, "request_timeout": 30},
        "general_settings": {"master_key": LITELLM_KEY},
    }


def start_litellm(run, port_a, port_b):
    # JSON is YAML: LiteLLM reads the file with a YAML loader.
    path = os.path.join(run.directory, "litellm.yaml")
    with open(path, "w") as f:
        json.dump(litellm_config(port_a, port_b), f, indent=1)
    port = free_port()
    litellm = os.path.join(os.path.dirname(PYTHON), "litellm")
    proc = run.start("litellm", [litellm, "--config", path, "--host", "127.0.0.1", "--port", str(port),
                                 "--num_workers", str(LITELLM_WORKERS)],
                     quiet_env(LITELLM_LOG="ERROR", LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1"))
    wait_until(lambda: answers(port, "POST", "/v1/chat/completions", CHAT, LITELLM_KEY, is_completion), 180,
               "LiteLLM to answer a chat completion", proc, interval=0.5)
    return proc, port


# MARK: 1. /runsync overhead

def runsync_overhead(run):
    echo, echo_port = start_echo(run, "echo")
    config = {"upstreams": [{"name": "echo", "url": f"http://127.0.0.1:{echo_port}/v2/echo", "api_key_env": "UPSTREAM_KEY"}],
              "breaker": BREAKER, "probe_interval_seconds": PROBE_INTERVAL}
    gateway, gateway_port = start_gateway(run, "gateway-runsync", config, "/runsync", JOB, completed)
    try:
        targets = {"direct": (echo_port, UPSTREAM_KEY), "gateway": (gateway_port, GATEWAY_KEY)}
        url = lambda name: f"http://127.0.0.1:{targets[name][0]}/runsync"  # noqa: E731
        for name in targets:
            wrk(url(name), RUNSYNC_LUA, targets[name][1], seconds=2)
        rounds = {"direct": [], "gateway": []}
        shares = []
        for index in range(PAIRS):
            order = ("direct", "gateway") if index % 2 == 0 else ("gateway", "direct")
            pair = {}
            for name in order:
                pair[name] = wrk(url(name), RUNSYNC_LUA, targets[name][1], seconds=PAIR_SECONDS)
                rounds[name].append(pair[name])
            shares.append(pair["gateway"]["rate"] / pair["direct"]["rate"])
        print(f"  /runsync wrk pairs (gateway / direct): {', '.join(f'{s:.0%}' for s in shares)}", flush=True)

        for name, (port, key) in targets.items():
            sequential(port, "/runsync", JOB, key, 200)
        samples = {"direct": [], "gateway": []}
        differences = []
        for index in range(ROUNDS):
            order = ("direct", "gateway") if index % 2 == 0 else ("gateway", "direct")
            medians = {}
            for name in order:
                port, key = targets[name]
                round_samples = sequential(port, "/runsync", JOB, key, ROUND_REQUESTS)
                samples[name].extend(round_samples)
                medians[name] = statistics.median(round_samples)
            differences.append(medians["gateway"] - medians["direct"])
        return {"rounds": rounds, "shares": sorted(shares), "samples": samples, "differences": sorted(differences)}
    finally:
        run.stop(gateway, echo)


# MARK: 2-4. chat completions, a stub killed and restarted

def breaker_lines(gateway, upstream, fragment, since):
    return [t for t, line in list(gateway.lines) if t >= since and fragment in line and f"Gateway: {upstream} " in line]


def opening(times, killed):
    """From the dead upstream's failure lines: (seconds from the kill to the last of the first burst,
    that is when its breaker opened; lines in that burst; the later ones, each a half-open trial)."""
    if not times:
        return None, 0, 0
    burst = [times[0]]
    for t in times[1:]:
        if t - burst[-1] > COOLDOWN / 2:
            break
        burst.append(t)
    return burst[-1] - killed, len(burst), len(times) - len(burst)


def return_time(counter, port, up_at, deadline):
    """Seconds from up_at to the first time counter(port) is above zero (None: not before deadline)."""
    while time.monotonic() < deadline:
        value = counter(port)
        if value:
            return time.monotonic() - up_at
        time.sleep(0.01)
    return None


def kill_and_restart(run, url, script, key, victim, victim_port, restart, counter, gateway=None, fragment=""):
    """The kill run (victim SIGKILLed at half of SECONDS) and the restart run (it restarted on its port
    RESTART_AFTER s in); the failed requests of each, the breaker's timing from the gateway's lines."""
    out = {}
    killer = BackgroundWrk(url, script, key)
    killer.sleep_until(SECONDS / 2)
    killed = time.monotonic()
    victim.kill()
    out["kill_run"] = killer.result()
    if gateway is not None:
        times = breaker_lines(gateway, victim.name, fragment, killed)
        out["open_after"], out["dead_calls"], out["trials"] = opening(times, killed)
    restarter = BackgroundWrk(url, script, key)
    restarter.sleep_until(RESTART_AFTER)
    revived = restart(victim_port)
    up_at = time.monotonic()
    out["back_after"] = return_time(counter, victim_port, up_at, restarter.started + SECONDS)
    out["restart_run"] = restarter.result()
    out["after_return"] = counter(victim_port)
    out["revived"] = revived
    return out


def openai_side(run, side):
    stub_a, port_a = start_stub(run, f"{side}-stub-a")
    stub_b, port_b = start_stub(run, f"{side}-stub-b")
    procs = [stub_a, stub_b]
    try:
        if side == "gateway":
            config = {"upstreams": [
                {"name": stub.name, "openai_url": f"http://127.0.0.1:{port}/v1", "models": [MODEL]}
                for stub, port in ((stub_a, port_a), (stub_b, port_b))],
                "breaker": BREAKER, "probe_interval_seconds": PROBE_INTERVAL}
            proxy, port = start_gateway(run, "gateway-openai", config, "/openai/v1/chat/completions", CHAT, is_completion)
            url, key, gateway = f"http://127.0.0.1:{port}/openai/v1/chat/completions", GATEWAY_KEY, proxy
        else:
            proxy, port = start_litellm(run, port_a, port_b)
            url, key, gateway = f"http://127.0.0.1:{port}/v1/chat/completions", LITELLM_KEY, None
        procs.append(proxy)
        out = {}
        wrk(url, CHAT_LUA, key, seconds=2)
        before = (stub_calls(port_a), stub_calls(port_b))
        out["load"] = wrk(url, CHAT_LUA, key)
        out["split"] = (stub_calls(port_a) - before[0], stub_calls(port_b) - before[1])
        print(f"  {side}: {out['load']['rate']:,.0f} req/s, p50 {out['load']['p50']:.2f} ms, p99 {out['load']['p99']:.2f} ms, "
              f"bad {out['load']['bad']}, socket errors {out['load']['socket_errors']}; stubs answered {out['split']}", flush=True)

        def restart(victim_port):
            revived, _ = start_stub(run, f"{side}-stub-b", victim_port)
            procs.append(revived)
            return revived

        out.update(kill_and_restart(run, url, CHAT_LUA, key, stub_b, port_b, restart, stub_calls, gateway, "did not take the"))
        out["a_calls"] = stub_calls(port_a)
        print(f"  {side}, stub-b killed mid-run: {failures(out['kill_run'])} failed of {out['kill_run']['requests']} "
              f"({out['kill_run']['rate']:,.0f} req/s); restarted: answering again {fmt_s(out['back_after'])} after it was up, "
              f"failed {failures(out['restart_run'])} of {out['restart_run']['requests']}", flush=True)
        return out
    finally:
        run.stop(*procs)


def endpoint_side(run):
    echo_a, port_a = start_echo(run, "echo-a")
    echo_b, port_b = start_echo(run, "echo-b")
    procs = [echo_a, echo_b]
    try:
        config = {"upstreams": [{"name": proc.name, "url": f"http://127.0.0.1:{port}/v2/{proc.name}", "tier": "pool",
                                 "api_key_env": "UPSTREAM_KEY"} for proc, port in ((echo_a, port_a), (echo_b, port_b))],
                  "breaker": BREAKER, "probe_interval_seconds": PROBE_INTERVAL}
        gateway, port = start_gateway(run, "gateway-pool", config, "/runsync", JOB, completed)
        procs.append(gateway)
        url = f"http://127.0.0.1:{port}/runsync"
        wrk(url, RUNSYNC_LUA, GATEWAY_KEY, seconds=2)

        def restart(victim_port):
            revived, _ = start_echo(run, "echo-b", victim_port)
            procs.append(revived)
            return revived

        # start_echo's readiness check runs one job on the revived echo itself: traffic from the
        # gateway shows as more than that one.
        counter = lambda p: max(0, (echo_completed(p) or 0) - 1)  # noqa: E731
        out = kill_and_restart(run, url, RUNSYNC_LUA, GATEWAY_KEY, echo_b, port_b, restart, counter, gateway, "did not take the job")
        print(f"  endpoint API, echo-b killed mid-run: {failures(out['kill_run'])} failed of {out['kill_run']['requests']}; "
              f"restarted: jobs again {fmt_s(out['back_after'])} after it was up", flush=True)
        return out
    finally:
        run.stop(*procs)


# MARK: Report

def fmt_s(seconds):
    return "never" if seconds is None else f"{seconds:.2f} s"


def ms(seconds):
    return f"{seconds * 1e3:.3f} ms"


def met(ok):
    return "met" if ok else "MISSED"


def median(values):
    return sorted(values)[len(values) // 2]


def version_of(args):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def describe():
    print(f"gateway benchmark (issue 29): release gateway vs the upstream called directly and vs LiteLLM's proxy; one run, loopback only")
    print(f"CPU: {cpu_description()}")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work on the machine skews every figure)")
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    built = lambda path: time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))  # noqa: E731
    print(f"binaries: {RELEASE} (gateway built {built(GATEWAY)}, echo {built(ECHO)}, fake-upstream {built(STUB)}); "
          f"source HEAD {head}{' with uncommitted changes' if dirty else ''}")
    versions = subprocess.run([PYTHON, "-c", "import importlib.metadata as m, sys; print(sys.version.split()[0], "
                               "*(m.version(p) for p in ('litellm', 'uvicorn', 'fastapi', 'openai', 'httpx', 'aiohttp')))"],
                              capture_output=True, text=True).stdout.split()
    if len(versions) == 7:
        print(f"LiteLLM {versions[1]} (Python {versions[0]}, uvicorn {versions[2]}, fastapi {versions[3]}, openai {versions[4]}, "
              f"httpx {versions[5]}, aiohttp {versions[6]}); {version_of(['wrk', '-v'])}")
    else:
        print(f"LiteLLM: not importable with {PYTHON}")
    print(f"settings: wrk -t1 -c{CONNECTIONS} --timeout {WRK_TIMEOUT}, {SECONDS} s runs; gateway WORKER_CONCURRENCY={GATEWAY_CONCURRENCY}, "
          f"RUNPOD_LOG_LEVEL=WARN, breaker {json.dumps(BREAKER)} (other fields default), probe_interval_seconds {PROBE_INTERVAL:g}, "
          f"retry_budget default; echo WORKER_CONCURRENCY=16; both sides authenticate a Bearer key")
    print(f"LiteLLM: --num_workers {LITELLM_WORKERS} (its default is 1), uvicorn, LITELLM_LOG=ERROR, LITELLM_LOCAL_MODEL_COST_MAP=True, no database; "
          f"router_settings {json.dumps(litellm_config(0, 0)['router_settings'])}")
    print(f"stubs: fake-upstream llm (Swift, Fakes/StubLLM); kill at {SECONDS / 2:g} s of a {SECONDS} s run (SIGKILL), "
          f"restart on the same port {RESTART_AFTER:g} s into the next run", flush=True)


def report(overhead, ours, peer, endpoint):
    if overhead:
        rounds, shares, samples, differences = overhead["rounds"], overhead["shares"], overhead["samples"], overhead["differences"]
        rate = {name: median([r["rate"] for r in runs]) for name, runs in rounds.items()}
        wp50 = {name: median([r["p50"] for r in runs]) for name, runs in rounds.items()}
        wp99 = {name: median([r["p99"] for r in runs]) for name, runs in rounds.items()}
        bad = {name: sum(failures(r) for r in runs) for name, runs in rounds.items()}
        p50 = {name: statistics.median(values) for name, values in samples.items()}
        p99 = {name: percentile(values, 0.99) for name, values in samples.items()}
        share = shares[len(shares) // 2]
        added = p50["gateway"] - p50["direct"]
        print()
        print(f"| /runsync, no-op echo job | straight to `echo --local` | through the gateway (1 upstream) | gateway vs direct | goal |")
        print("|---|---:|---:|---:|---|")
        print(f"| req/s, wrk -t1 -c{CONNECTIONS} ({PAIRS} pairs of {PAIR_SECONDS} s, median rounds) | {rate['direct']:,.0f} | "
              f"{rate['gateway']:,.0f} | {share:.0%} (median pair; {shares[0]:.0%}–{shares[-1]:.0%}) | ≥ 70 %: {met(share >= 0.7)} |")
        print(f"| p50, sequential (one client, {ROUNDS} alternating rounds of {ROUND_REQUESTS}) | {ms(p50['direct'])} | {ms(p50['gateway'])} | "
              f"+{ms(added)} (median round +{ms(differences[len(differences) // 2])}) | ≤ +0.3 ms: {met(added <= 0.0003)} |")
        print(f"| p99, sequential | {ms(p99['direct'])} | {ms(p99['gateway'])} | +{ms(p99['gateway'] - p99['direct'])} | |")
        print(f"| p50 / p99 under wrk -c{CONNECTIONS} | {wp50['direct']:.2f} / {wp99['direct']:.2f} ms | {wp50['gateway']:.2f} / "
              f"{wp99['gateway']:.2f} ms | +{wp50['gateway'] - wp50['direct']:.2f} / +{wp99['gateway'] - wp99['direct']:.2f} ms | |")
        print(f"| failed requests (bad answers + socket errors) | {bad['direct']} | {bad['gateway']} | | 0 |")

    if ours or peer:
        sides = [(name, side) for name, side in (("our gateway", ours), (f"LiteLLM proxy ({LITELLM_WORKERS} workers)", peer)) if side]
        print()
        print("| chat completions, non-streamed, 2 stub upstreams | " + " | ".join(name for name, _ in sides) + " | ours / LiteLLM | goal |")
        print("|---|" + "---:|" * len(sides) + "---:|---|")

        def row(label, render, ratio="", goal=""):
            print(f"| {label} | " + " | ".join(render(side) for _, side in sides) + f" | {ratio if ours and peer else ''} | {goal} |")

        load = lambda s: s["load"]  # noqa: E731
        row(f"req/s, wrk -t1 -c{CONNECTIONS} {SECONDS} s", lambda s: f"{load(s)['rate']:,.0f}",
            f"{load(ours)['rate'] / load(peer)['rate']:.1f}×" if ours and peer else "",
            f"≥ 10×: {met(load(ours)['rate'] >= 10 * load(peer)['rate'])}" if ours and peer else "≥ 10×")
        row("p50", lambda s: f"{load(s)['p50']:.2f} ms",
            f"1/{load(peer)['p50'] / load(ours)['p50']:.0f}" if ours and peer else "")
        row("p99", lambda s: f"{load(s)['p99']:.2f} ms",
            f"1/{load(peer)['p99'] / load(ours)['p99']:.0f}" if ours and peer else "",
            f"≤ 1/5: {met(load(ours)['p99'] * 5 <= load(peer)['p99'])}" if ours and peer else "≤ 1/5")
        row("failed requests (bad answers + socket errors)", lambda s: f"{failures(load(s))}", goal="0")
        row("completions answered by stub a / stub b", lambda s: f"{s['split'][0]:,} / {s['split'][1]:,}")
        row(f"stub b SIGKILLed at {SECONDS / 2:g} s of {SECONDS} s: failed client requests",
            lambda s: f"{failures(s['kill_run'])} of {s['kill_run']['requests']:,} (socket errors {s['kill_run']['socket_errors']})",
            goal=f"0 for ours: {met(failures(ours['kill_run']) == 0)}" if ours else "0 for ours")
        row("  req/s in that run", lambda s: f"{s['kill_run']['rate']:,.0f}")
        row("stub b's death → its breaker open (calls it was given meanwhile)",
            lambda s: (f"{ms(s['open_after'])} ({s['dead_calls']} calls; then {s['trials']} half-open trials)"
                       if s.get("open_after") is not None else "not measured"))
        row(f"stub b back on its port ({RESTART_AFTER:g} s into a {SECONDS} s run) → its first completion again",
            lambda s: fmt_s(s["back_after"]), goal=f"≤ cooldown {COOLDOWN:g} s")
        row("  completions stub b answered in the rest of that run", lambda s: f"{s['after_return']:,}" if s["after_return"] is not None else "?")
        row("  failed client requests in that run", lambda s: f"{failures(s['restart_run'])} of {s['restart_run']['requests']:,}", goal="0")

    if endpoint:
        e = endpoint
        print()
        print("| endpoint API: 2 `echo --local` upstreams in one tier, /runsync | our gateway | goal |")
        print("|---|---:|---|")
        print(f"| echo-b SIGKILLed at {SECONDS / 2:g} s of {SECONDS} s: failed client requests | {failures(e['kill_run'])} of "
              f"{e['kill_run']['requests']:,} ({e['kill_run']['rate']:,.0f} req/s) | 0: {met(failures(e['kill_run']) == 0)} |")
        print(f"| echo-b's death → its breaker open (calls it was given meanwhile) | "
              + (f"{ms(e['open_after'])} ({e['dead_calls']} calls; then {e['trials']} half-open trials)" if e["open_after"] is not None
                 else "no failed call logged") + " | |")
        print(f"| echo-b back on its port → jobs reach it again | {fmt_s(e['back_after'])} | ≤ cooldown {COOLDOWN:g} s |")
        print(f"| failed client requests in that run | {failures(e['restart_run'])} of {e['restart_run']['requests']:,} | 0 |")

    runs = []
    if overhead:
        runs += [(f"/runsync {name}, round {index + 1}", result) for name, results in overhead["rounds"].items()
                 for index, result in enumerate(results)]
    for name, side in (("our gateway (chat)", ours), ("LiteLLM", peer), ("gateway, endpoint API", endpoint)):
        if side:
            runs += [(f"{name}, {run_name}", side[run_name]) for run_name in ("load", "kill_run", "restart_run") if run_name in side]
    samples = []
    for name, result in runs:
        if result["samples"]:
            samples.append(f"  {name}: " + "\n    ".join(result["samples"][:3]))
        if result["socket_errors"]:
            samples.append(f"  {name}: socket errors {result['sockets']}")
    if samples:
        print()
        print("failed requests as answered (first few per run; wrk's request: POST of the body in the run's Lua script):")
        print("\n".join(samples))


def main():
    for path in (GATEWAY, ECHO, STUB):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{path} not found: build it with scripts/build-release.sh (benchmarks/run.sh gateway does)")
    describe()
    directory = tempfile.mkdtemp(prefix="bench-gateway-")
    print(f"process logs in {directory}", flush=True)
    run = Running(directory)
    overhead = ours = peer = endpoint = None
    failed = False
    try:
        if ONLY in ("", "overhead"):
            overhead = runsync_overhead(run)
        if ONLY in ("", "openai"):
            ours = openai_side(run, "gateway")
            peer = openai_side(run, "litellm")
        if ONLY in ("", "endpoint"):
            endpoint = endpoint_side(run)
        report(overhead, ours, peer, endpoint)
    except BaseException:
        failed = True
        raise
    finally:
        run.stop()
        if failed:
            print(f"(process logs kept in {directory})", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
