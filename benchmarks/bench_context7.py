#!/usr/bin/env python3
"""context7 benchmark, one run on one machine, the same fake Context7 (50 ms of upstream latency)
and the same redis-server for both sides:

1. cached get_docs through /runsync, wrk -t1 -c16: `context7 --local` vs the Python peer
   (runpod-python 1.12.0 --rp_serve_api, aiohttp per call, redis-py SETEX; context7_peer_worker.py);
2. 64 concurrent identical uncached get_docs requests: upstream calls made (the fake counts them);
3. the Redis client alone: GET round trips/s on one connection at pipeline depth 1 and 64
   (redis-bench) vs redis-benchmark -c 1 -P <depth> against the same server (its own, on core 0;
   both clients on core 1; five alternating rounds, medians).
Usage: benchmarks/run.sh context7
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_server import PYTHON, RELEASE, ROOT, free_port, local_server, quiet_env, wrk  # noqa: E402

LUA = os.path.join(ROOT, "benchmarks", "context7_get_docs.lua")
LATENCY_MS = int(os.environ.get("BENCH_UPSTREAM_LATENCY_MS", "50"))


def pinned(core):
    """`taskset -c core` when the machine has the cores (steadier figures: no migrations)."""
    return ["taskset", "-c", str(core)] if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else []


def start_redis(core=None):
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    port = free_port()
    server = subprocess.Popen([*(pinned(core) if core is not None else []), "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
            return server, port, directory
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_fake():
    fake = subprocess.Popen([os.path.join(RELEASE, "fake-upstream"), "context7", "--port", "0", "--latency-ms", str(LATENCY_MS)],
                            stdout=subprocess.PIPE, text=True)
    line = fake.stdout.readline()
    port = int(re.search(r"listening on (\d+)", line).group(1))
    return fake, f"http://127.0.0.1:{port}"


def upstream_calls(base):
    with urllib.request.urlopen(base + "/_stats") as response:
        return json.load(response)["calls"]


def runsync(port, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/runsync", data=json.dumps({"input": body}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def concurrent_identical(port, base, query, count=64):
    before = upstream_calls(base)
    body = {"action": "get_docs", "library_id": "/acme/widgets", "query": query}
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: runsync(port, body), range(count)))
    completed = sum(1 for answer in answers if answer.get("status") == "COMPLETED")
    return upstream_calls(base) - before, completed


def swift_command(port):
    return [os.path.join(RELEASE, "context7"), "--local", "--port", str(port)]


def peer_command(port):
    return [PYTHON, os.path.join(ROOT, "benchmarks", "context7_peer_worker.py"), "--rp_serve_api", "--rp_api_port", str(port),
            "--rp_api_host", "127.0.0.1"]


def redis_client_benchmark(requests=200_000, rounds=5):
    """Alternating runs of redis-bench and redis-benchmark against a redis-server of their own, the
    server on core 0 and the clients on core 1; the median of each (the host is noisy)."""
    server, redis_port, directory = start_redis(core=0)
    samples = {depth: ([], []) for depth in (1, 64)}
    try:
        for _ in range(rounds):
            for depth in (1, 64):
                count = requests * (1 if depth == 1 else 5)
                ours = subprocess.run([*pinned(1), os.path.join(RELEASE, "redis-bench"), f"redis://127.0.0.1:{redis_port}", str(count),
                                       str(depth)], capture_output=True, text=True, check=True).stdout
                samples[depth][0].append(float(re.search(rf"depth {depth}: (\d+) GET/s", ours).group(1)))
                peer = subprocess.run([*pinned(1), "redis-benchmark", "-p", str(redis_port), "-t", "get", "-c", "1", "-P", str(depth),
                                       "-n", str(count), "-q"], capture_output=True, text=True).stdout
                samples[depth][1].append(float(re.search(r"GET: ([\d.]+) requests per second", peer).group(1)))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(directory, ignore_errors=True)
    median = lambda values: sorted(values)[len(values) // 2]
    return {depth: (median(mine), median(theirs)) for depth, (mine, theirs) in samples.items()}


def main():
    redis_server, redis_port, directory = start_redis()
    fake, base = start_fake()
    redis_url = f"redis://127.0.0.1:{redis_port}"
    try:
        print(f"context7 benchmark (fake Context7 with {LATENCY_MS} ms latency, redis-server {redis_port}; one run)", flush=True)
        # The client alone first, while nothing else has run on the machine yet.
        client = redis_client_benchmark()
        for depth, (mine, theirs) in client.items():
            print(f"  Redis GET depth {depth:2d}: RedisClient {mine:10,.0f}/s  redis-benchmark {theirs:10,.0f}/s  ({mine / theirs:.0%})", flush=True)
        results = {}
        for name, command in (("swift", swift_command), ("python peer", peer_command)):
            subprocess.run(["redis-cli", "-p", str(redis_port), "flushall"], capture_output=True)
            env = quiet_env(CONTEXT7_BASE_URL=base, REDIS_URL=redis_url, WORKER_CONCURRENCY="64")
            with local_server(command, env) as port:
                calls, completed = concurrent_identical(port, base, f"{name} cold question")
                runsync(port, {"action": "get_docs", "library_id": "/acme/widgets", "query": "how to install"})  # fill the cache
                rate, p99, errors = wrk(f"http://127.0.0.1:{port}/runsync", script=LUA)
                results[name] = (rate, p99, errors, calls, completed)
                print(f"  {name:12s} cached /runsync {rate:9,.0f} req/s  p99 {p99:7.2f} ms  non-2xx {errors}  "
                      f"64 identical cold requests: {calls} upstream calls ({completed} completed)", flush=True)

        swift, peer = results["swift"], results["python peer"]
        print()
        print("| measure | swift | python peer | ratio |")
        print("|---|---:|---:|---:|")
        print(f"| cached get_docs /runsync req/s (wrk -t1 -c16) | {swift[0]:,.0f} | {peer[0]:,.0f} | {swift[0] / peer[0]:.1f}x |")
        print(f"| cached get_docs /runsync p99 | {swift[1]:.2f} ms | {peer[1]:.2f} ms | {swift[1] / peer[1]:.3f}x |")
        print(f"| upstream calls for 64 concurrent identical cold requests | {swift[3]} | {peer[3]} | |")
        for depth, (mine, theirs) in client.items():
            print(f"| Redis GET/s, one connection, pipeline depth {depth} (vs redis-benchmark) | {mine:,.0f} | {theirs:,.0f} | {mine / theirs:.0%} |")
    finally:
        fake.terminate()
        redis_server.terminate()
        redis_server.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
