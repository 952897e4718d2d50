#!/usr/bin/env python3
"""Endpoint-API benchmark, one run on one machine.

1. POST /runsync with the echo handler: the Swift `echo --local` vs runpod-python 1.12.0's
   `--rp_serve_api` (its echo worker), wrk with one thread and 16 connections: throughput and p99;
   and, on the same Swift server in the same run, GET /ping (the bare server): the job path's cost,
   as the median share over short /ping and /runsync rounds run side by side.
2. OpenAI passthrough overhead: chat/completions through the local server vs straight to the stub
   upstream (p50 of sequential requests), and the first streamed chunk's arrival time both ways.
Usage: benchmarks/run.sh server
"""
import contextlib
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "python"))
import stub_openai  # noqa: E402

RELEASE = os.environ.get("BENCH_BIN", os.path.join(ROOT, ".build-release", "release"))
PYTHON = os.environ.get("BENCH_PYTHON", sys.executable)
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# /ping against /runsync: short rounds side by side (see swift_runsync_and_ping).
PAIRS = int(os.environ.get("BENCH_PAIRS", "9"))
PAIR_SECONDS = int(os.environ.get("BENCH_PAIR_SECONDS", "3"))
LUA = os.path.join(ROOT, "benchmarks", "runsync.lua")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url, proc):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            request = urllib.request.Request(url, data=b'{"input":{"warm":1}}', headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def stop_process(proc, grace=10):
    """SIGTERM, then SIGKILL after `grace` seconds; waits for the process either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def quiet_env(**extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "RUNPOD_LOG_LEVEL": "ERROR", "UVICORN_LOG_LEVEL": "warning"}
    env.update(extra)
    return env


def wrk(url, script=LUA, seconds=None, warm_up=True):
    lua = ["-s", script] if script else []
    if warm_up:
        subprocess.run(["wrk", "-t1", "-c16", "-d2s", *lua, url], capture_output=True)
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds or SECONDS}s", "--latency", *lua, url],
                         capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0


@contextlib.contextmanager
def local_server(command, env):
    """A server started as command(port) on a free port; yields the port once /runsync answers."""
    port = free_port()
    server = subprocess.Popen(command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/runsync", server)
        yield port
    finally:
        server.terminate()
        server.wait()


def echo_command(port):
    return [os.path.join(RELEASE, "echo"), "--local", "--port", str(port)]


def wrk_against(command, env):
    with local_server(command, env) as port:
        return wrk(f"http://127.0.0.1:{port}/runsync")


def swift_runsync_and_ping():
    """/ping and /runsync on one server in PAIRS pairs of adjacent PAIR_SECONDS rounds, the order
    alternating. The host's speed drifts by tens of percent within a minute, more than the gap
    being measured, so each pair's share is taken between neighbouring rounds and the median pair
    is the figure; rates and p99 are the medians of their rounds."""
    with local_server(echo_command, quiet_env(WORKER_CONCURRENCY="16")) as port:
        ping_url, runsync_url = f"http://127.0.0.1:{port}/ping", f"http://127.0.0.1:{port}/runsync"
        wrk(ping_url, script=None, seconds=2)
        wrk(runsync_url, seconds=2)
        runsync, ping, shares = [], [], []
        for index in range(PAIRS):
            if index % 2 == 0:
                p = wrk(ping_url, script=None, seconds=PAIR_SECONDS, warm_up=False)
                r = wrk(runsync_url, seconds=PAIR_SECONDS, warm_up=False)
            else:
                r = wrk(runsync_url, seconds=PAIR_SECONDS, warm_up=False)
                p = wrk(ping_url, script=None, seconds=PAIR_SECONDS, warm_up=False)
            ping.append(p)
            runsync.append(r)
            shares.append(r[0] / p[0])
        median = lambda runs: sorted(runs)[len(runs) // 2]
        summary = lambda runs: (median([run[0] for run in runs]), median([run[1] for run in runs]), sum(run[2] for run in runs))
        return summary(runsync), summary(ping), sorted(shares)


def runsync_benchmark():
    swift, ping, shares = swift_runsync_and_ping()
    return {
        "shares": shares,
        "swift /ping": ping,
        "swift": swift,
        "runpod-python": wrk_against(lambda port: [PYTHON, os.path.join(ROOT, "benchmarks", "runpod_echo_worker.py"),
                                                   "--rp_serve_api", "--rp_api_port", str(port), "--rp_api_host", "127.0.0.1"],
                                     quiet_env()),
    }


def timed_requests(host, port, path, body, count, first_byte=False):
    connection = http.client.HTTPConnection(host, port)
    samples = []
    payload = json.dumps(body)
    for _ in range(count):
        start = time.perf_counter()
        connection.request("POST", path, body=payload, headers={"Content-Type": "application/json", "Authorization": "Bearer k"})
        response = connection.getresponse()
        if first_byte:
            response.read(1)
            samples.append(time.perf_counter() - start)
            response.read()
        else:
            response.read()
            samples.append(time.perf_counter() - start)
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
    connection.close()
    return samples


def passthrough_benchmark(count=2000):
    upstream = stub_openai.serve()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    stub_port = upstream.server_address[1]
    try:
        with local_server(echo_command, quiet_env(OPENAI_BASE_URL=f"http://127.0.0.1:{stub_port}", WORKER_CONCURRENCY="4")) as port:
            chat = {"model": "ok", "messages": [{"role": "user", "content": "hi"}]}
            stream = dict(chat, stream=True)
            out = {}
            for name, target_port, path in (("direct", stub_port, "/v1/chat/completions"),
                                             ("through worker", port, "/openai/v1/chat/completions")):
                timed_requests("127.0.0.1", target_port, path, chat, 200)  # warm-up
                out[name] = (statistics.median(timed_requests("127.0.0.1", target_port, path, chat, count)),
                             statistics.median(timed_requests("127.0.0.1", target_port, path, stream, count // 4, first_byte=True)))
            return out
    finally:
        upstream.shutdown()


def main():
    print(f"endpoint API benchmark (wrk -t1 -c16; swift /ping and /runsync in {PAIRS} pairs of {PAIR_SECONDS} s rounds, "
          f"runpod-python {SECONDS} s; same machine, one run)")
    runsync = runsync_benchmark()
    shares = runsync.pop("shares")
    for name, (rate, p99, errors) in runsync.items():
        print(f"  /runsync {name:14s} {rate:10,.0f} req/s  p99 {p99:6.2f} ms  non-2xx {errors}", flush=True)
    passthrough = passthrough_benchmark()
    direct, through = passthrough["direct"], passthrough["through worker"]
    print(f"  passthrough p50: direct {direct[0] * 1e3:.3f} ms, through worker {through[0] * 1e3:.3f} ms, "
          f"added {(through[0] - direct[0]) * 1e3:.3f} ms")
    print(f"  first streamed byte p50: direct {direct[1] * 1e3:.3f} ms, through worker {through[1] * 1e3:.3f} ms, "
          f"added {(through[1] - direct[1]) * 1e3:.3f} ms")
    swift, peer, ping = runsync["swift"], runsync["runpod-python"], runsync["swift /ping"]
    print()
    print("| measure | swift | runpod-python 1.12.0 | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| /runsync req/s (wrk -t1 -c16) | {swift[0]:,.0f} | {peer[0]:,.0f} | {swift[0] / peer[0]:.1f}x |")
    print(f"| /runsync p99 | {swift[1]:.2f} ms | {peer[1]:.2f} ms | {swift[1] / peer[1]:.2f}x |")
    print(f"| /ping req/s, same server (the bare server) | {ping[0]:,.0f} | | |")
    share = shares[len(shares) // 2]
    print(f"| /runsync as a share of /ping (median of {len(shares)} side-by-side pairs; "
          f"pairs {shares[0]:.0%}–{shares[-1]:.0%}) | {share:.0%} | | |")
    print()
    print("| passthrough (stub upstream) | direct | through worker | added |")
    print("|---|---:|---:|---:|")
    print(f"| chat/completions p50 | {direct[0] * 1e3:.3f} ms | {through[0] * 1e3:.3f} ms | {(through[0] - direct[0]) * 1e3:.3f} ms |")
    print(f"| first streamed chunk p50 | {direct[1] * 1e3:.3f} ms | {through[1] * 1e3:.3f} ms | {(through[1] - direct[1]) * 1e3:.3f} ms |")


if __name__ == "__main__":
    main()
