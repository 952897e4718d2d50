#!/usr/bin/env python3
"""VectorIndex vs FAISS IndexFlatL2 (faiss-cpu), same data, one run.

Cases (k=10): single query and a batch of 1000 queries at 100k x 384 and 1M x 384, plus 100k at
d=768 and 1536. FAISS gets its best thread setting (1 or all cores) per case. For the d=384 cases
also: durable add throughput, a store's acknowledged latency (fsync included), and cold open to the
first answer in a fresh process (our snapshot + WAL vs faiss.read_index), and the first store after it.
Usage: benchmarks/run.sh vector   (BENCH_LARGE=0 skips the 1M cases)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import faiss
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.environ.get("BENCH_BIN", os.path.join(ROOT, ".build-release", "release"))
K = 10
SINGLES = 50
CORES = os.cpu_count() or 1


def faiss_case(base, queries, threads):
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatL2(base.shape[1])
    start = time.perf_counter()
    index.add(base)
    add = time.perf_counter() - start
    index.search(queries[:1], K)
    times, ids = [], []
    for query in queries[:SINGLES]:
        start = time.perf_counter()
        _, found = index.search(query[None, :], K)
        times.append(time.perf_counter() - start)
        ids.append(found[0].tolist())
    start = time.perf_counter()
    index.search(queries, K)
    batch = len(queries) / (time.perf_counter() - start)
    return {"add_s": add, "single_p50_ms": statistics.median(times) * 1e3, "batch_qps": batch, "ids": ids}


def swift_case(base_path, query_path, dimension):
    out = subprocess.run([os.path.join(RELEASE, "vector-bench"), base_path, query_path, str(dimension), str(K), str(SINGLES)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def durability_case(base_path, query_path, dimension, base, tmp):
    directory = os.path.join(tmp, "namespace")
    built = json.loads(subprocess.run([os.path.join(RELEASE, "vector-bench"), "build", base_path, str(dimension), directory],
                                      capture_output=True, text=True, check=True).stdout)
    opened = json.loads(subprocess.run([os.path.join(RELEASE, "vector-bench"), "open", directory, str(dimension), query_path],
                                       capture_output=True, text=True, check=True).stdout)
    index_path = os.path.join(tmp, "faiss.index")
    index = faiss.IndexFlatL2(dimension)
    index.add(base)
    faiss.write_index(index, index_path)
    del index
    script = ("import time; t = time.perf_counter(); import faiss, numpy as np; "
              f"q = np.fromfile({query_path!r}, dtype=np.float32).reshape(-1, {dimension})[:1]; "
              f"i = faiss.read_index({index_path!r}); i.search(q, 10); print(time.perf_counter() - t)")
    faiss_open = float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    subprocess.run(["rm", "-rf", directory, index_path])
    return built, opened, faiss_open


def agreement(a, b):
    return sum(len(set(x) & set(y)) for x, y in zip(a, b)) / (len(a) * K)


def main():
    cases = [(100_000, 384), (100_000, 768), (100_000, 1536)]
    if os.environ.get("BENCH_LARGE", "1") != "0":
        cases.insert(1, (1_000_000, 384))
    rng = np.random.default_rng(42)
    rows, durable = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for count, dimension in cases:
            base = rng.standard_normal((count, dimension), dtype=np.float32)
            queries = rng.standard_normal((1000, dimension), dtype=np.float32)
            base_path, query_path = os.path.join(tmp, "base.f32"), os.path.join(tmp, "queries.f32")
            base.tofile(base_path)
            queries.tofile(query_path)
            peer = {threads: faiss_case(base, queries, threads) for threads in sorted({1, CORES})}
            ours = swift_case(base_path, query_path, dimension)
            best_single = min(peer.values(), key=lambda r: r["single_p50_ms"])
            best_batch = max(peer.values(), key=lambda r: r["batch_qps"])
            same = agreement(ours["ids"], best_single["ids"])
            label = f"{count // 1000}k x {dimension}"
            print(f"  {label}: single p50 swift {ours['single_p50_ms']:.2f} ms vs faiss {best_single['single_p50_ms']:.2f} ms; "
                  f"batch swift {ours['batch_qps']:,.0f} QPS vs faiss {best_batch['batch_qps']:,.0f} QPS; "
                  f"add swift {ours['add_s']:.2f} s vs faiss {best_single['add_s']:.2f} s; ids agree {same:.1%}", flush=True)
            rows.append((label, ours, best_single, best_batch, same))
            if dimension == 384:
                built, opened, faiss_open = durability_case(base_path, query_path, dimension, base, tmp)
                durable.append((label, built, opened, faiss_open))
                print(f"  {label}: durable add {built['add_per_s']:,.0f}/s, store ack p50 {built['store_ack_p50_ms']:.2f} ms, "
                      f"cold open to first answer {opened['first_answer_s']:.2f} s vs faiss read_index {faiss_open:.2f} s, "
                      f"first store after the open {opened['first_store_s'] * 1e3:.2f} ms", flush=True)
            del base
    print()
    print("| case | VectorIndex | FAISS IndexFlatL2 (best threads) | speed-up over FAISS |")
    print("|---|---:|---:|---:|")
    for label, ours, single, batch, same in rows:
        print(f"| single query, {label} | {ours['single_p50_ms']:.2f} ms | {single['single_p50_ms']:.2f} ms | "
              f"{single['single_p50_ms'] / ours['single_p50_ms']:.2f}x |")
        print(f"| batch of 1000, {label} | {ours['batch_qps']:,.0f} QPS | {batch['batch_qps']:,.0f} QPS | "
              f"{ours['batch_qps'] / batch['batch_qps']:.2f}x |")
    for label, built, opened, faiss_open in durable:
        print(f"| cold open to first answer, {label} | {opened['first_answer_s']:.2f} s | {faiss_open:.2f} s (read_index) | "
              f"{faiss_open / opened['first_answer_s']:.2f}x |")
        print(f"| durable add, {label} | {built['add_per_s']:,.0f} vectors/s | — | |")
        print(f"| store acknowledged (fsync), {label} | p50 {built['store_ack_p50_ms']:.2f} ms, p99 {built['store_ack_p99_ms']:.2f} ms | — | |")
        print(f"| first store acknowledged after a cold open, {label} | {opened['first_store_s'] * 1e3:.2f} ms | — | |")
    print()
    print("ids agreeing with FAISS (top-10 overlap): " + ", ".join(f"{r[0]} {r[4]:.1%}" for r in rows))


if __name__ == "__main__":
    sys.exit(main())
