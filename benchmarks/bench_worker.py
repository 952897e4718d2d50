#!/usr/bin/env python3
"""Queue-worker benchmark: the Swift echo worker vs runpod-python 1.12.0, same mock platform, one run.

Prints jobs/s at concurrency 1 and 8 (no-op jobs), time from process start to the first job-take,
and the resident memory of an idle worker (all of its processes).
Usage: benchmarks/run.sh worker   (builds release binaries and the Python venv first)
"""
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.environ.get("BENCH_BIN", os.path.join(ROOT, ".build-release", "release"))
PYTHON = os.environ.get("BENCH_PYTHON", sys.executable)
DURATION = float(os.environ.get("BENCH_SECONDS", "5"))


def start_platform(generate=None):
    args = [os.path.join(RELEASE, "mock-platform"), "--long-poll-ms", "100", "--no-recording"]
    if generate is not None:
        args += ["--generate", json.dumps(generate)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    port = int(line.strip().split()[-1])
    return proc, f"http://127.0.0.1:{port}"


def stats(base):
    with urllib.request.urlopen(f"{base}/_stats", timeout=5) as response:
        return json.load(response)


def worker_env(base, concurrency=1):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/v2/ep1/job-take/$ID?gpu=bench",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/v2/ep1/job-done/$RUNPOD_POD_ID/$ID?gpu=bench",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/v2/ep1/job-stream/$RUNPOD_POD_ID/$ID?gpu=bench",
        "RUNPOD_WEBHOOK_PING": f"{base}/v2/ep1/ping/$RUNPOD_POD_ID?gpu=bench",
        "RUNPOD_POD_ID": "bench-worker",
        "RUNPOD_AI_API_KEY": "bench-key",
        "RUNPOD_LOG_LEVEL": "ERROR",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "WORKER_CONCURRENCY": str(concurrency),
    }
    return env


WORKERS = {
    "swift": lambda: [os.path.join(RELEASE, "echo")],
    "runpod-python": lambda: [PYTHON, os.path.join(ROOT, "benchmarks", "runpod_echo_worker.py")],
}


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def throughput(name, concurrency):
    platform, base = start_platform(generate={"n": 1})
    worker = subprocess.Popen(WORKERS[name](), env=worker_env(base, concurrency),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)  # start-up and warm-up
        first = stats(base)["completed"]
        t0 = time.monotonic()
        time.sleep(DURATION)
        done = stats(base)["completed"] - first
        return done / (time.monotonic() - t0)
    finally:
        stop(worker)
        stop(platform)


def time_to_first_take(name, runs=5):
    samples = []
    for _ in range(runs):
        platform, base = start_platform()
        start_ns = time.time_ns()
        worker = subprocess.Popen(WORKERS[name](), env=worker_env(base),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            first = None
            while first is None and time.monotonic() < deadline:
                first = stats(base)["first_take_epoch_ns"]
                if first is None:
                    time.sleep(0.005)
            if first is not None:
                samples.append((first - start_ns) / 1e6)
        finally:
            stop(worker)
            stop(platform)
    return statistics.median(samples)


def tree_rss_kb(pid):
    """Resident memory of a process and all its descendants, in kB."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    total, stack, count = 0, [pid], 0
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        count += 1
        except OSError:
            pass
        stack.extend(children.get(current, []))
    return total, count


def idle_rss(name):
    platform, base = start_platform()
    worker = subprocess.Popen(WORKERS[name](), env=worker_env(base),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4.0)  # started, polling, heartbeat running
        return tree_rss_kb(worker.pid)
    finally:
        stop(worker)
        stop(platform)


def main():
    print(f"queue worker benchmark (no-op jobs, {DURATION:.0f} s per run, same mock platform)")
    rows = []
    for concurrency in (1, 8):
        for name in WORKERS:
            rate = throughput(name, concurrency)
            rows.append((f"jobs/s at concurrency {concurrency}", name, f"{rate:,.0f}"))
            print(f"  {name:14s} concurrency {concurrency}: {rate:,.1f} jobs/s", flush=True)
    for name in WORKERS:
        ms = time_to_first_take(name)
        rows.append(("start to first job-take (median of 5)", name, f"{ms:,.1f} ms"))
        print(f"  {name:14s} start to first job-take: {ms:,.1f} ms", flush=True)
    for name in WORKERS:
        kb, processes = idle_rss(name)
        rows.append(("idle resident memory", name, f"{kb / 1024:,.1f} MB ({processes} process{'es' if processes > 1 else ''})"))
        print(f"  {name:14s} idle RSS: {kb / 1024:,.1f} MB over {processes} process(es)", flush=True)
    print()
    print("| measure | worker | result |")
    print("|---|---|---:|")
    for measure, name, value in rows:
        print(f"| {measure} | {name} | {value} |")


if __name__ == "__main__":
    main()
