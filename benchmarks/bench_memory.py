#!/usr/bin/env python3
"""The memory handler end to end: `memory --local`, 20,000 texts stored with the offline embedder,
then `retrieve` through POST /runsync (sequential requests on one keep-alive connection; wrk with 16
connections for throughput). Prints latency and throughput.

BENCH_PART=vectors100k runs another part instead (BENCH_PART=all runs both): 100,000 random float32
vectors of dimension 384 (seed 42, not normalised: the handler ranks by squared L2 on the vectors as
given, as IndexFlatL2 does) stored with `store_batch` in batches as large as the handler and the
20 MB /runsync body limit allow, then 1000 sequential `retrieve` by vector (k=10, after 200 warm-up)
on one keep-alive connection, against FAISS IndexFlatL2 in process over the same vectors and queries
(its faster of 1 and all cores), with recall@10 against the exact top 10 (numpy, float64).
Usage: benchmarks/run.sh memory   (benchmarks/run.sh memory-100k for the vector part)
"""
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_server import stop_process  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.environ.get("BENCH_BIN", os.path.join(ROOT, ".build-release", "release"))
WORDS = ("memory vector store retrieve nearest worker runtime swift serverless endpoint embedding index "
         "snapshot durable volume query result latency throughput search cosine distance text").split()
# The handler's limits (Handlers/Memory/MemoryRequest.swift: maxBatch; EndpointLimits.runsyncBodyBytes).
MAX_BATCH = 10_000
RUNSYNC_BODY_BYTES = 20 * 1024 * 1024


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_raw(connection, body):
    connection.request("POST", "/runsync", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    if answer.get("status") != "COMPLETED":
        raise RuntimeError(str(answer)[:2000])
    return answer["output"]


def post(connection, body):
    return post_raw(connection, json.dumps({"input": body}))


def start_server(directory, port, log_level, log=None):
    """`memory --local` on `port` with MEMORY_DIR `directory` (no embeddings settings: the offline
    embedder), once it answers GET /ping."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    try:
        server = subprocess.Popen([os.path.join(RELEASE, "memory"), "--local", "--port", str(port)],
                                  env={"PATH": os.environ.get("PATH", ""), "MEMORY_DIR": directory, "RUNPOD_LOG_LEVEL": log_level,
                                       "WORKER_CONCURRENCY": "4"},
                                  stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    finally:
        if log:
            out.close()
    try:
        deadline = time.time() + 30
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"memory --local exited with {server.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    connection.close()
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("memory --local did not start")
            time.sleep(0.05)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server):
    stop_process(server)


def texts_part():
    directory = tempfile.mkdtemp(prefix="memory-bench-")
    port = free_port()
    server = None
    try:
        server = start_server(directory, port, "ERROR")
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
        if server is not None:
            stop_server(server)
        shutil.rmtree(directory, ignore_errors=True)


# MARK: retrieve by vector, 100k x 384

VECTORS, DIMENSION, K, WARMUP, QUERIES = 100_000, 384, 10, 200, 1000


def store_bodies(base):
    """`store_batch` bodies, each as many items as fit: at most MAX_BATCH and under the body limit.
    Vectors go as the float64 text of each float32 (exact: the handler parses a double and rounds it
    to the same float32)."""
    head, tail = '{"input": {"action": "store_batch", "items": [', "]}}"
    budget = RUNSYNC_BODY_BYTES - len(head) - len(tail) - 1024
    items, size = [], 0
    for i, row in enumerate(base):
        item = f'{{"key": "v{i}", "content": "t", "metadata": {{}}, "vector": {json.dumps(row.tolist())}}}'
        if items and (len(items) == MAX_BATCH or size + len(item) + 1 > budget):
            yield len(items), (head + ",".join(items) + tail).encode()
            items, size = [], 0
        items.append(item)
        size += len(item) + 1
    if items:
        yield len(items), (head + ",".join(items) + tail).encode()


def retrieve_body(query):
    return json.dumps({"input": {"action": "retrieve", "vector": query.tolist(), "k": K}}).encode()


def rss_mb(pid):
    """The process's resident memory (VmRSS, of it anonymous and file-backed), as text."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "RssAnon", "RssFile"):
                    fields[name] = int(value.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    if "VmRSS" not in fields:
        return "unknown"
    return f"{fields['VmRSS']:.0f} MB (anon {fields.get('RssAnon', 0):.0f}, file {fields.get('RssFile', 0):.0f})"


def disk_mb(directory):
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(directory) for name in names) / 2**20


def exact_top(base, queries):
    """The exact k nearest by squared L2, computed in float64."""
    base64 = base.astype(np.float64)
    norms = np.einsum("ij,ij->i", base64, base64)
    top = []
    for start in range(0, len(queries), 100):
        q = queries[start:start + 100].astype(np.float64)
        distances = norms[None, :] - 2.0 * (q @ base64.T) + np.einsum("ij,ij->i", q, q)[:, None]
        part = np.argpartition(distances, K, axis=1)[:, :K]
        order = np.take_along_axis(distances, part, axis=1).argsort(axis=1)
        top.extend(np.take_along_axis(part, order, axis=1).tolist())
    return top


def recall(found, exact):
    return sum(len(set(f[:K]) & set(e)) for f, e in zip(found, exact)) / (len(exact) * K)


def faiss_single(base, warmup, queries, threads):
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    for query in warmup:
        index.search(query[None, :], K)
    times, ids = [], []
    for query in queries:
        start = time.perf_counter()
        _, found = index.search(query[None, :], K)
        times.append(time.perf_counter() - start)
        ids.append(found[0].tolist())
    return statistics.median(times) * 1e3, ids


def vectors_part():
    global np, faiss
    import faiss
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_fleet import cpu_description

    print(f"CPU: {cpu_description()}", flush=True)
    rng = np.random.default_rng(42)
    base = rng.standard_normal((VECTORS, DIMENSION), dtype=np.float32)
    warmup = rng.standard_normal((WARMUP, DIMENSION), dtype=np.float32)
    queries = rng.standard_normal((QUERIES, DIMENSION), dtype=np.float32)
    directory = tempfile.mkdtemp(prefix="memory-bench-100k-")
    port = free_port()
    server = None
    try:
        server = start_server(os.path.join(directory, "data"), port, "WARN", log=os.path.join(directory, "memory.log"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        batches, largest, posting = 0, 0, 0.0
        wall = time.perf_counter()
        for count, body in store_bodies(base):
            start = time.perf_counter()
            answer = post_raw(connection, body)
            posting += time.perf_counter() - start
            if answer.get("stored") != count:
                raise RuntimeError(f"store_batch stored {answer.get('stored')} of {count}")
            batches, largest = batches + 1, max(largest, count)
        wall = time.perf_counter() - wall
        loaded_rss = rss_mb(server.pid)
        stats = post(connection, {"action": "stats"})
        if stats.get("count") != VECTORS or stats.get("dimension") != DIMENSION:
            raise RuntimeError(f"stats after the load: {stats}")
        kernels = {name: stats[name] for name in ("blas_kernels", "encoder_kernels", "vector_kernels") if name in stats}
        print(f"kernels: {', '.join(f'{name} {value}' for name, value in kernels.items()) or 'not reported'}", flush=True)
        print(f"load: {VECTORS:,} x {DIMENSION} vectors (not normalised: the handler ranks by squared L2 on the vectors as "
              f"given, as IndexFlatL2 does) in {batches} store_batch requests of up to {largest:,} items "
              f"({RUNSYNC_BODY_BYTES // 2**20} MB body limit): "
              f"{posting:.2f} s in the requests ({VECTORS / posting:,.0f} vectors/s, fsync included), {wall:.2f} s with "
              f"the client's JSON encoding; server RSS {loaded_rss}, data directory {disk_mb(os.path.join(directory, 'data')):.0f} MB on disk",
              flush=True)

        for query in warmup:
            post_raw(connection, retrieve_body(query))
        bodies = [retrieve_body(query) for query in queries]
        samples, ours = [], []
        for body in bodies:
            start = time.perf_counter()
            answer = post_raw(connection, body)
            samples.append(time.perf_counter() - start)
            ours.append([int(memory["key"][1:]) for memory in answer["memories"]])
        connection.close()
        queried_rss = rss_mb(server.pid)
        stop_server(server)
        ours_p50 = statistics.median(samples) * 1e3
        ours_p99 = sorted(samples)[int(len(samples) * 0.99)] * 1e3

        peer = {threads: faiss_single(base, warmup, queries, threads) for threads in sorted({1, os.cpu_count() or 1})}
        threads = min(peer, key=lambda t: peer[t][0])
        faiss_p50, faiss_ids = peer[threads]
        exact = exact_top(base, queries)
        ours_recall, faiss_recall = recall(ours, exact), recall(faiss_ids, exact)
        short = sum(len(found) < K for found in ours)
        print(f"FAISS single-query p50 by threads: {', '.join(f'{t}: {peer[t][0]:.3f} ms' for t in sorted(peer))}; "
              f"FAISS recall@10 = {faiss_recall:.3f}; server RSS after the queries {queried_rss}"
              + (f"; {short} answers had fewer than {K} memories" if short else ""), flush=True)
        print(f"retrieve {VECTORS // 1000}k x {DIMENSION} through /runsync: p50 {ours_p50:.2f} ms, p99 {ours_p99:.2f} ms; "
              f"FAISS IndexFlatL2 in process p50 {faiss_p50:.2f} ms (threads {threads}); "
              f"ratio FAISS/ours = {faiss_p50 / ours_p50:.2f} x (goal >= 2); recall@10 = {ours_recall:.3f}", flush=True)
    except BaseException:
        if server is not None and os.path.exists(os.path.join(directory, "memory.log")):
            with open(os.path.join(directory, "memory.log"), errors="replace") as f:
                print("memory --local log (tail):\n" + "".join(f.readlines()[-20:]), file=sys.stderr)
        raise
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(directory, ignore_errors=True)


def main():
    part = os.environ.get("BENCH_PART", "texts")
    if part not in ("texts", "vectors100k", "all"):
        raise SystemExit(f"BENCH_PART must be texts (the default), vectors100k or all, got {part!r}")
    if part in ("texts", "all"):
        texts_part()
    if part in ("vectors100k", "all"):
        vectors_part()


if __name__ == "__main__":
    main()
