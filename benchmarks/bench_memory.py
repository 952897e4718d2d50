#!/usr/bin/env python3
"""The memory handler end to end: `memory --local`, 20,000 texts stored with the offline embedder,
then `retrieve` through POST /runsync (sequential requests on one keep-alive connection; wrk with 16
connections for throughput). Prints latency and throughput.
Usage: benchmarks/run.sh memory
"""
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.environ.get("BENCH_BIN", os.path.join(ROOT, ".build-release", "release"))
WORDS = ("memory vector store retrieve nearest worker runtime swift serverless endpoint embedding index "
         "snapshot durable volume query result latency throughput search cosine distance text").split()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(connection, body):
    connection.request("POST", "/runsync", body=json.dumps({"input": body}), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    if answer.get("status") != "COMPLETED":
        raise RuntimeError(answer)
    return answer["output"]


def main():
    directory = tempfile.mkdtemp(prefix="memory-bench-")
    port = free_port()
    server = subprocess.Popen([os.path.join(RELEASE, "memory"), "--local", "--port", str(port)],
                              env={"PATH": os.environ.get("PATH", ""), "MEMORY_DIR": directory, "RUNPOD_LOG_LEVEL": "ERROR",
                                   "WORKER_CONCURRENCY": "4"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("memory --local did not start")
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        count = 20_000
        start = time.perf_counter()
        for batch in range(0, count, 1000):
            items = [{"key": f"k{i}", "content": " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(12)) + f" #{i}",
                      "metadata": {"group": i % 10}} for i in range(batch, batch + 1000)]
            post(connection, {"action": "store_batch", "items": items})
        stored = count / (time.perf_counter() - start)
        samples = []
        for i in range(300):
            start = time.perf_counter()
            post(connection, {"action": "retrieve", "query": f"nearest vector search {WORDS[i % len(WORDS)]}", "k": 10})
            samples.append(time.perf_counter() - start)
        samples.sort()
        lua = os.path.join(directory, "retrieve.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.body = \'{"input": {"action": "retrieve", "query": "durable vector store latency", "k": 10}}\'\n')
        out = subprocess.run(["wrk", "-t2", "-c16", "-d5s", "-s", lua, f"http://127.0.0.1:{port}/runsync"],
                             capture_output=True, text=True).stdout
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        print(f"memory handler, {count:,} texts (offline embedder, 384 dims):")
        print(f"  store_batch through /runsync: {stored:,.0f} texts/s (embedding and fsync included)")
        print(f"  retrieve through /runsync: p50 {statistics.median(samples) * 1e3:.2f} ms, "
              f"p99 {samples[int(len(samples) * 0.99)] * 1e3:.2f} ms (sequential); {rate:,.0f} req/s with 16 connections")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
