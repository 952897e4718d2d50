#!/usr/bin/env python3
"""Embeddings benchmark, one run on one machine: all-MiniLM-L6-v2 in process (TextEmbedding, Swift
on OpenBLAS) against sentence-transformers on PyTorch (CPU, at its best thread count), same model
directory, same texts.

1. 1,024 texts of mixed lengths in batches of 32: texts/s.
2. One short text: latency (median of 200).
3. Model load to first embedding; resident memory the model adds.
4. End to end: `retrieve` with a text query through `/runsync` on `memory --local` (p50, p99 of
   sequential requests; req/s with 16 concurrent clients under wrk).
Usage: benchmarks/run.sh embeddings
"""
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_server import RELEASE, ROOT, SECONDS, free_port, quiet_env  # noqa: E402

MODEL = os.environ.get("EMBEDDINGS_MODEL_DIR", os.path.join(ROOT, ".build", "models", "all-MiniLM-L6-v2"))
WORDS = ("memory agent vector search runs jobs on serverless workers with queues and endpoints while models embed "
         "sentences into dense spaces for retrieval the quick brown fox jumps over lazy dogs near quarterly sales "
         "reports deadlines meetings invoices customers support tickets latency throughput café naïve résumé "
         "北京 東京 emoji 🚀 https://example.com/path code def fib(n): return n").split()


def texts(count=1024, seed=7):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        length = rng.choice([3, 5, 8, 12, 20, 40, 80, 160, 300])
        out.append(" ".join(rng.choice(WORDS) for _ in range(length)))
    return out


def swift_figures(sample):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(sample, f)
    try:
        out = subprocess.run([os.path.join(RELEASE, "embedding-bench"), MODEL, f.name, "32"], capture_output=True, text=True,
                             check=True, env=quiet_env()).stdout
        return json.loads(out)
    finally:
        os.unlink(f.name)


def python_figures(sample):
    """sentence-transformers, in a child per thread count so each starts clean."""
    code = r'''
import json, resource, sys, time
start = time.perf_counter()
rss0 = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
import torch
torch.set_num_threads(int(sys.argv[2]))
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[3]))
t0 = time.perf_counter()
model = SentenceTransformer(sys.argv[1], device="cpu")
model.encode(["warm up: the first embedding"])
load = time.perf_counter() - t0
rss1 = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
best = None
for _ in range(3):
    t = time.perf_counter()
    model.encode(texts, batch_size=32)
    best = min(best or 1e9, time.perf_counter() - t)
rss2 = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
single = []
for _ in range(200):
    t = time.perf_counter()
    model.encode(["where is the young feline napping?"])
    single.append(time.perf_counter() - t)
single.sort()
print(json.dumps({"texts_per_second": len(texts) / best, "single_p50_ms": single[100] * 1000,
                  "load_to_first_ms": load * 1000, "rss_added_mb": (rss2 - rss0) / 1024}))
'''
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(sample, f)
    results = {}
    try:
        for threads in (1, 2):
            out = subprocess.run([sys.executable, "-c", code, MODEL, str(threads), f.name], capture_output=True, text=True,
                                 check=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false")).stdout
            results[threads] = json.loads(out.strip().splitlines()[-1])
    finally:
        os.unlink(f.name)
    best = max(results, key=lambda t: results[t]["texts_per_second"])
    fastest_single = min(results, key=lambda t: results[t]["single_p50_ms"])
    figures = dict(results[best])
    figures["threads"] = best
    figures["single_p50_ms"] = results[fastest_single]["single_p50_ms"]
    figures["single_threads"] = fastest_single
    return figures


def end_to_end():
    port = free_port()
    with tempfile.TemporaryDirectory() as volume:
        env = quiet_env(EMBEDDINGS_MODEL_DIR=MODEL, MEMORY_DIR=volume, WORKER_CONCURRENCY="16")
        server = subprocess.Popen([os.path.join(RELEASE, "memory"), "--local", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            def post(body):
                request = urllib.request.Request(f"{base}/runsync", data=json.dumps({"input": body}).encode(),
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.load(response)
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}/ping", timeout=1)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError("memory --local did not start")
                    time.sleep(0.1)
            corpus = texts(2000, seed=11)
            for start in range(0, len(corpus), 200):
                items = [{"key": f"t{start + i}", "content": text} for i, text in enumerate(corpus[start:start + 200])]
                answer = post({"action": "store_batch", "items": items})
                assert answer.get("status") == "COMPLETED", answer
            query = {"action": "retrieve", "query": "quarterly sales report deadline", "k": 5}
            samples = []
            for _ in range(300):
                t = time.perf_counter()
                answer = post(query)
                samples.append((time.perf_counter() - t) * 1000)
                assert answer["status"] == "COMPLETED", answer
            samples.sort()
            lua = os.path.join(tempfile.gettempdir(), "retrieve.lua")
            with open(lua, "w") as f:
                f.write('wrk.method = "POST"\nwrk.body = \'%s\'\nwrk.headers["Content-Type"] = "application/json"\n'
                        % json.dumps({"input": query}))
            out = subprocess.run(["wrk", "-t1", "-c16", f"-d{SECONDS}s", "-s", lua, f"{base}/runsync"], capture_output=True,
                                 text=True).stdout
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            return {"p50": samples[150], "p99": samples[296], "rate": rate, "errors": int(errors.group(1)) if errors else 0}
        finally:
            server.terminate()
            server.wait()


def main():
    sample = texts()
    print(f"embeddings benchmark: all-MiniLM-L6-v2, {len(sample)} mixed-length texts in batches of 32 (same machine, one run)")
    ours = swift_figures(sample)
    print(f"  swift:  {ours}", flush=True)
    peer = python_figures(sample)
    print(f"  python: {peer}", flush=True)
    e2e = end_to_end()
    print(f"  end to end: {e2e}", flush=True)
    print()
    print(f"| measure | TextEmbedding (Swift, OpenBLAS, {ours['threads']} threads) | sentence-transformers (PyTorch CPU) | ratio | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| texts/s, 1,024 mixed texts, batches of 32 | {ours['texts_per_second']:,.0f} | {peer['texts_per_second']:,.0f} "
          f"({peer['threads']} threads) | {ours['texts_per_second'] / peer['texts_per_second']:.2f}x | >= 1.5x |")
    print(f"| one short text, p50 | {ours['single_p50_ms']:.2f} ms | {peer['single_p50_ms']:.2f} ms ({peer['single_threads']} threads) "
          f"| {ours['single_p50_ms'] / peer['single_p50_ms']:.2f}x | <= 0.5x |")
    print(f"| model load to first embedding | {ours['load_to_first_ms']:.0f} ms | {peer['load_to_first_ms']:.0f} ms | | <= 300 ms |")
    print(f"| resident memory added by the model | {ours['rss_added_mb']:.0f} MB ({ours['rss_added_mb'] / ours['weights_mb']:.2f}x the "
          f"{ours['weights_mb']:.0f} MB of weights) | {peer['rss_added_mb']:.0f} MB (with PyTorch) | | <= 1.5x weights |")
    print()
    print("| memory --local, retrieve with a text query (2,000 texts stored) | figure |")
    print("|---|---:|")
    print(f"| /runsync p50, sequential | {e2e['p50']:.2f} ms |")
    print(f"| /runsync p99, sequential | {e2e['p99']:.2f} ms |")
    print(f"| req/s, 16 concurrent clients (wrk) | {e2e['rate']:,.0f} (non-2xx {e2e['errors']}) |")


if __name__ == "__main__":
    main()
