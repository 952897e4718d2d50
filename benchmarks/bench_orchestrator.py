#!/usr/bin/env python3
"""orchestrator benchmark, one run on one machine. The same downstream servers for both sides:
`memory --local`, `context7 --local` on the fake Context7, and the stub LLM (`fake-upstream llm`).

- ours: `orchestrator --local` writing every stage to PostgreSQL 15 (a throwaway cluster with the
  default durability: fsync and synchronous commit on); batch_process with `concurrency` = c;
- the peer: benchmarks/orchestrator_peer_worker.py on runpod-python 1.12.0 (--rp_serve_api): /run +
  /status every 1 s per downstream stage, aiohttp, an unbounded asyncio.gather per batch, no state.

For c in 1, 8, 64: 16 batches of c leads (a quarter of them free-mail leads the stub LLM rejects),
run one after another; leads/s = leads / wall time, per-lead latency = each lead's own duration as
its worker reports it; ours the median round of three (the host's CPU is shared and noisy), the
peer's one round (its time is its 1 s polls). CPU per lead of every process, from /proc; then
where a lead's time goes in ours: each stage's mean duration as saved in the workflow tables.
Usage: benchmarks/run.sh orchestrator
"""
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
from bench_server import PYTHON, RELEASE, ROOT, free_port, quiet_env  # noqa: E402

BIN = "/usr/lib/postgresql/15/bin"
LLM_LATENCY_MS = int(os.environ.get("BENCH_LLM_LATENCY_MS", "0"))
BATCHES = {1: 16, 8: 16, 64: 16}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def as_postgres(command):
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


def start_postgres(directory):
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
    port = free_port()
    subprocess.run(as_postgres([f"{BIN}/initdb", "-D", f"{directory}/data", "-A", "trust", "-U", "postgres"]), check=True, capture_output=True)
    server = subprocess.Popen(as_postgres([f"{BIN}/postgres", "-D", f"{directory}/data", "-p", str(port), "-k", directory,
                                           "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", *os.environ.get("BENCH_PG_OPTIONS", "").split()]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run([f"{BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0:
            return server, port
        time.sleep(0.05)
    raise RuntimeError("postgres did not start")


def start_listening(command):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    port = int(re.search(r"listening on (\d+)", process.stdout.readline()).group(1))
    return process, port


def start_worker(command, env, ready_path="/ping"):
    port = free_port()
    process = subprocess.Popen(command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command(port)[0]} exited: {process.returncode}")
        try:
            if ready_path == "/ping":
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
            else:
                runsync(port, {"action": "get_lead", "lead_id": "warm-up"}, timeout=5)
            return process, port
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("worker did not start")


def runsync(port, body, timeout=600):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/runsync?wait=300000", data=json.dumps({"input": body}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def lead(side, concurrency, index, round=0):
    weak = index % 4 == 3
    return {"id": f"{side}-r{round}-c{concurrency}-{index}", "name": f"Person {index}", "title": "VP of Sales", "company": f"Company {index}",
            "company_size": 300, "industry": "Software", "email": f"p{index}@{'gmail.com' if weak else f'company{index}.com'}",
            "signals": ["pricing_page"]}


def measure(port, side, concurrency, bounded, round=0):
    durations, statuses = [], {}
    started = time.perf_counter()
    for batch in range(BATCHES[concurrency]):
        leads = [lead(side, concurrency, batch * concurrency + i, round) for i in range(concurrency)]
        body = {"action": "batch_process", "leads": leads}
        if bounded:
            body["concurrency"] = concurrency
        answer = runsync(port, body)
        if answer.get("status") != "COMPLETED":
            raise RuntimeError(f"{side} batch failed: {answer}")
        for report in answer["output"]["leads"]:
            durations.append(report["duration_ms"])
            statuses[report["status"]] = statuses.get(report["status"], 0) + 1
    wall = time.perf_counter() - started
    durations.sort()
    count = len(durations)
    return {"leads_per_s": count / wall, "p50": durations[count // 2], "p99": durations[min(count - 1, int(count * 0.99))],
            "statuses": statuses, "count": count}


def cpu_seconds(root):
    """CPU time (user + system) of a process and its live descendants, from /proc."""
    children, times = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def stage_times(pg_port):
    out = subprocess.run([f"{BIN}/psql", "-At", "-F", " ", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "postgres", "-c",
                          "SELECT stage, round(avg(duration_ms)::numeric, 2), count(*) FROM orchestrator_steps "
                          "WHERE lead_id LIKE 'swift-r%-c1-%' GROUP BY stage ORDER BY min(completed_at)"],
                         capture_output=True, text=True).stdout
    return [line.split(" ") for line in out.strip().splitlines()]


def main():
    directory = tempfile.mkdtemp(prefix="bench-orchestrator-")
    pg_dir = tempfile.mkdtemp(prefix="bench-orchestrator-pg-")
    processes = []
    try:
        postgres, pg_port = start_postgres(pg_dir)
        processes.append(postgres)
        fake, fake_port = start_listening([os.path.join(RELEASE, "fake-upstream"), "context7", "--port", "0"])
        llm, llm_port = start_listening([os.path.join(RELEASE, "fake-upstream"), "llm", "--port", "0", "--latency-ms", str(LLM_LATENCY_MS)])
        processes += [fake, llm]
        memory, memory_port = start_worker(lambda port: [os.path.join(RELEASE, "memory"), "--local", "--port", str(port)],
                                           quiet_env(MEMORY_DIR=os.path.join(directory, "memory"), WORKER_CONCURRENCY="64"))
        context7, context7_port = start_worker(lambda port: [os.path.join(RELEASE, "context7"), "--local", "--port", str(port)],
                                               quiet_env(CONTEXT7_BASE_URL=f"http://127.0.0.1:{fake_port}", WORKER_CONCURRENCY="64"))
        processes += [memory, context7]
        shared = dict(LLM_BASE_URL=f"http://127.0.0.1:{llm_port}/v1", LLM_MODEL="stub", CONTEXT7_LIBRARY="/acme/widgets",
                      WORKER_CONCURRENCY="4")
        ours_env = quiet_env(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{pg_port}/postgres", DATABASE_POOL_SIZE=os.environ.get("BENCH_POOL", "8"),
                             CONTEXT7_ENDPOINT=f"http://127.0.0.1:{context7_port}/v2/context7",
                             MEMORY_ENDPOINT=f"http://127.0.0.1:{memory_port}/v2/memory", **shared)
        peer_env = quiet_env(CONTEXT7_ENDPOINT=f"http://127.0.0.1:{context7_port}", MEMORY_ENDPOINT=f"http://127.0.0.1:{memory_port}", **shared)
        print(f"orchestrator benchmark (stub LLM {LLM_LATENCY_MS} ms, fake Context7 0 ms; one run, same machine)", flush=True)
        results = {}
        sides = (("swift", lambda port: [os.path.join(RELEASE, "orchestrator"), "--local", "--port", str(port)], ours_env, True, "/ping"),
                 ("python peer", lambda port: [PYTHON, os.path.join(ROOT, "benchmarks", "orchestrator_peer_worker.py"), "--rp_serve_api",
                                               "--rp_api_port", str(port), "--rp_api_host", "127.0.0.1"], peer_env, False, "runsync"))
        only = os.environ.get("BENCH_ONLY")  # "swift" while tuning: skips the peer's minute of 1 s polls
        if only:
            print(f"  ports: postgres {pg_port}, memory {memory_port}, context7 {context7_port}, fake Context7 {fake_port}, LLM {llm_port}")
        for side, command, env, bounded, ready in sides:
            if only and not side.startswith(only):
                continue
            worker, port = start_worker(command, env, ready)
            try:
                # One lead first, so caches and connections are warm on both sides.
                measure_warm = {"action": "process_lead", "lead_data": lead(side.split()[0] + "-warm", 0, 0)}
                runsync(port, measure_warm)
                for concurrency in BATCHES:
                    groups = {"orchestrator": worker.pid, "postgres": postgres.pid, "memory": memory.pid, "context7": context7.pid,
                              "stub LLM": llm.pid, "fake Context7": fake.pid}
                    # Ours is bound by the machine's CPU, which this host shares with its neighbours:
                    # the median of ROUNDS rounds. The peer is bound by its 1 s polls: one round.
                    rounds = []
                    for round in range(ROUNDS if bounded else 1):
                        before = {name: cpu_seconds(pid) for name, pid in groups.items()}
                        result = measure(port, side.split()[0], concurrency, bounded, round)
                        result["cpu"] = {name: cpu_seconds(pid) - before[name] for name, pid in groups.items()}
                        rounds.append(result)
                    rounds.sort(key=lambda r: r["leads_per_s"])
                    result = rounds[len(rounds) // 2]
                    used = result["cpu"]
                    results[(side, concurrency)] = result
                    per_lead = "  ".join(f"{name} {used[name] * 1000 / result['count']:.2f}" for name in groups)
                    print(f"  {side:12s} c={concurrency:2d}: {result['leads_per_s']:8.1f} leads/s  p50 {result['p50']:8.1f} ms  "
                          f"p99 {result['p99']:8.1f} ms  {result['statuses']}", flush=True)
                    print(f"      CPU ms per lead: {per_lead}", flush=True)
            finally:
                worker.terminate()
                worker.wait()
        if only:
            return
        print()
        print("| batch concurrency | swift leads/s | peer leads/s | ratio | swift p50 | peer p50 | ratio | swift p99 | peer p99 |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for concurrency in BATCHES:
            ours, peer = results[("swift", concurrency)], results[("python peer", concurrency)]
            print(f"| {concurrency} | {ours['leads_per_s']:,.1f} | {peer['leads_per_s']:,.2f} | {ours['leads_per_s'] / peer['leads_per_s']:.1f}x "
                  f"| {ours['p50']:.1f} ms | {peer['p50']:,.0f} ms | 1/{peer['p50'] / ours['p50']:.0f} "
                  f"| {ours['p99']:.1f} ms | {peer['p99']:,.0f} ms |")
        print()
        print("Where a lead's time goes (ours, c=1, mean per stage as saved in orchestrator_steps):")
        for stage, mean, count in stage_times(pg_port):
            print(f"  {stage:14s} {float(mean):7.2f} ms  ({count} leads)")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
