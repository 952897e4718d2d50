#!/usr/bin/env python3
"""Fleet benchmark, one run on one machine, one private redis-server for both sides: fleet mode (one
`echo --local --gateway-only` gateway and two `echo` worker processes sharing Redis through QUEUE_URL)
against Celery 5 on the same Redis (broker and result backend, task_acks_late=True, two worker
processes; celery_peer_tasks.py).

1. No-op jobs/s: a client submits N jobs and collects every result. Fleet: wrk (fleet_jobs.lua) POSTs
   /run for each job, then long-polls /status-sync/{id} until each is final. Celery: delay() for each,
   then .get() each. Both sides: 2 worker processes × WORKER_CONCURRENCY jobs at once (Celery: the
   threads pool with that many threads per process, the same total parallelism; BENCH_CELERY_POOL).
2. Sequential submit→result latency, p50 and p99: /runsync through the gateway vs delay().get().
3. Fleet /runsync p50 vs the same echo handler run in process by a plain `echo --local` (no QUEUE_URL),
   in alternating rounds: the difference.
4. Redis commands per job: CONFIG RESETSTAT, the run of item 1, INFO commandstats; per command. Commands a
   Lua script runs count too (Redis counts them); a MONITOR pass over a smaller run splits the total into
   commands clients sent and commands run inside scripts. Idle commands/s (no jobs) for scale.
5. A worker process SIGKILLed mid-job: 20 jobs sleeping 2 s, the worker holding the most of them killed
   0.5 s in; how many jobs end with a result within the bound (30 s after the kill). Fleet: a dead
   worker's jobs are reclaimed after FLEET_LEASE_SECONDS (15 s default; BENCH_FLEET_LEASE). Celery: its
   unacknowledged tasks come back only after the Redis transport's visibility timeout (1 h default).

Environment: BENCH_FLEET_SHAPE (gateway-only, or working: a gateway that runs jobs and one worker fewer),
BENCH_JOBS (5000), BENCH_WORKER_CONCURRENCY (8), BENCH_CONNECTIONS (wrk, 32), BENCH_ROUNDS (5)
and BENCH_ROUND_JOBS (400) for latency, BENCH_MONITOR_JOBS (500), BENCH_KILL_BOUND (30),
BENCH_FLEET_LEASE (unset: the worker's default), BENCH_CELERY_POOL (threads), BENCH_ONLY (fleet|celery),
BENCH_BATCH_TIMEOUT (300 s, one batch of jobs).
Usage: benchmarks/run.sh fleet
"""
import contextlib
import http.client
import json
import os
import queue
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
from bench_context7 import start_redis  # noqa: E402
from bench_server import PYTHON, RELEASE, ROOT, free_port, quiet_env, stop_process  # noqa: E402

import redis  # noqa: E402

BENCH_DIR = os.path.join(ROOT, "benchmarks")
ECHO = os.path.join(RELEASE, "echo")
JOBS_LUA = os.path.join(BENCH_DIR, "fleet_jobs.lua")
JOBS = int(os.environ.get("BENCH_JOBS", "5000"))
CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "8"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
ROUND_JOBS = int(os.environ.get("BENCH_ROUND_JOBS", "400"))
MONITOR_JOBS = int(os.environ.get("BENCH_MONITOR_JOBS", "500"))
IDLE_SECONDS = 3.0
KILL_JOBS, KILL_SLEEP, KILL_AFTER = 20, 2.0, 0.5
KILL_BOUND = float(os.environ.get("BENCH_KILL_BOUND", "30"))
FLEET_LEASE = os.environ.get("BENCH_FLEET_LEASE", "")
CELERY_POOL = os.environ.get("BENCH_CELERY_POOL", "threads")
ONLY = os.environ.get("BENCH_ONLY", "")
# gateway-only: a --gateway-only gateway and WORKERS workers; working: a gateway that runs jobs too
# and WORKERS - 1 workers.
SHAPE = os.environ.get("BENCH_FLEET_SHAPE", "gateway-only")
if SHAPE not in ("gateway-only", "working"):
    raise SystemExit(f"BENCH_FLEET_SHAPE={SHAPE!r}: expected gateway-only or working")
ENDPOINT = "bench"
WORKERS = 2
BATCH_TIMEOUT = int(os.environ.get("BENCH_BATCH_TIMEOUT", "300"))
PAYLOAD = {"n": 1}
JSON_HEADERS = {"Content-Type": "application/json"}
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


# MARK: Machine

def cpu_description():
    fields, flags = {}, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key in ("model name", "cpu family") and key not in fields:
                    fields[key] = value
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    present = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in ("avx2", "avx512f", "amx_tile"))
    return (f"{fields.get('model name', 'unknown CPU')} (cpu family {fields.get('cpu family', '?')}), "
            f"{os.cpu_count()} logical CPUs; {present}")


# MARK: Processes

class Processes:
    """Every process the benchmark starts, each in a session of its own (so a SIGKILL takes its children
    too), its output in a log file; all stopped by pid at the end."""

    def __init__(self, directory):
        self.directory = directory
        self.running = {}

    def start(self, name, args, env, cwd=None):
        log = open(os.path.join(self.directory, f"{name}.log"), "wb")
        try:
            proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.running[name] = proc
        return proc

    def check(self, *names):
        for name in names:
            proc = self.running[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name, lines=20):
        try:
            with open(os.path.join(self.directory, f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def kill(self, name):
        """SIGKILL, the process and its children."""
        proc = self.running[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, *names):
        names = [name for name in (names or tuple(self.running)) if name in self.running]
        for name in names:
            proc = self.running[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for name in names:
            proc = self.running.pop(name)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_until(condition, timeout, what, check=lambda: None, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        check()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def percentile(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# MARK: Redis

def commandstats(client):
    """Calls per command since the last CONFIG RESETSTAT, without the benchmark's own INFO and CONFIG."""
    stats = client.info("commandstats")
    calls = {}
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        if name.startswith(("info", "config")):
            continue
        calls[name] = value["calls"]
    return calls


def idle_rate(client):
    client.config_resetstat()
    time.sleep(IDLE_SECONDS)
    return sum(commandstats(client).values()) / IDLE_SECONDS


@contextlib.contextmanager
def monitored(port, directory, name):
    """MONITOR while the block runs; yields a dict filled afterwards with commands sent by clients
    (`client`) and commands run inside Lua scripts (`script`, MONITOR's `[db lua]` lines)."""
    path = os.path.join(directory, f"monitor-{name}.txt")
    with open(path, "w") as out:
        proc = subprocess.Popen(["redis-cli", "-p", str(port), "monitor"], stdout=out, stderr=subprocess.DEVNULL)
    counts = {"client": 0, "script": 0}
    try:
        time.sleep(0.3)
        yield counts
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait()
    line_pattern = re.compile(r'^\d+\.\d+ \[\d+ ([^\]]+)\] "')
    with open(path, errors="replace") as f:
        for line in f:
            match = line_pattern.match(line)
            if match:
                counts["script" if match.group(1) == "lua" else "client"] += 1


# MARK: Fleet

def fleet_env(redis_url, **extra):
    return quiet_env(QUEUE_URL=redis_url, ENDPOINT_ID=ENDPOINT, **extra)


def post(connection, path, body):
    connection.request("POST", path, body=json.dumps(body), headers=JSON_HEADERS)
    response = connection.getresponse()
    return response.status, response.read()


def get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def runsync_answers(port):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        status, body = post(connection, "/runsync", {"input": PAYLOAD})
        connection.close()
        return status == 200 and json.loads(body).get("status") == "COMPLETED"
    except (OSError, ValueError, http.client.HTTPException):
        return False


def fleet_workers_seen(client):
    """How many fleet workers Redis knows: the workers hash (beats) or the queue group's consumers."""
    seen = 0
    with contextlib.suppress(redis.RedisError):
        seen = max(seen, client.hlen(f"fleet:{{{ENDPOINT}}}:workers"))
    with contextlib.suppress(redis.RedisError):
        for group in client.xinfo_groups(f"fleet:{{{ENDPOINT}}}:queue"):
            seen = max(seen, int(group.get("consumers", 0)))
    return seen


def start_fleet(procs, redis_url, client, extra=None):
    """One gateway and worker processes: with SHAPE `gateway-only`, a --gateway-only gateway and
    WORKERS workers; with `working`, a gateway that also runs jobs (WORKER_CONCURRENCY of them, each
    started as it is queued when a slot is free) and WORKERS - 1 workers: WORKERS processes run jobs
    either way. Answers the gateway's port once a /runsync has gone through and Redis has seen every
    worker."""
    extra = extra or {}
    port = free_port()
    if SHAPE == "working":
        procs.start("gateway", [ECHO, "--local", "--port", str(port)],
                    fleet_env(redis_url, WORKER_CONCURRENCY=str(CONCURRENCY), RUNPOD_POD_ID="bench-gateway", **extra))
    else:
        procs.start("gateway", [ECHO, "--local", "--port", str(port), "--gateway-only"], fleet_env(redis_url, **extra))
    names = ["gateway"]
    for index in range(1, WORKERS + (0 if SHAPE == "working" else 1)):
        name = f"worker{index}"
        procs.start(name, [ECHO], fleet_env(redis_url, WORKER_CONCURRENCY=str(CONCURRENCY),
                                            RUNPOD_POD_ID=f"bench-worker-{index}", **extra))
        names.append(name)
    wait_until(lambda: runsync_answers(port), 60, "a /runsync through the gateway", check=lambda: procs.check(*names))
    try:
        wait_until(lambda: fleet_workers_seen(client) >= WORKERS, 15, "the fleet workers to register in Redis",
                   check=lambda: procs.check(*names))
    except RuntimeError:
        print(f"  warning: Redis shows {fleet_workers_seen(client)} of {WORKERS} fleet workers "
              f"(fleet:{{{ENDPOINT}}}:workers, the queue group's consumers); going on", flush=True)
    return port, names


def fleet_batch(port, jobs):
    """jobs no-op jobs through wrk (fleet_jobs.lua): (seconds to the last result, counts)."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{BATCH_TIMEOUT}s", "--timeout", "30s", "-s", JOBS_LUA,
               f"http://127.0.0.1:{port}", "--", str(jobs)]
    lines = queue.Queue()
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True)
    reader.start()
    deadline = time.monotonic() + BATCH_TIMEOUT + 10
    output = []
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise RuntimeError(f"wrk never collected all {jobs} jobs:\n{''.join(output)}")
            if line.startswith("done "):
                elapsed = time.perf_counter() - start
                values = [int(value) for value in line.split()[1:6]]
                return elapsed, dict(zip(("completed", "failed", "lost", "refused", "resent"), values))
            output.append(line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


def runsync_latencies(port, count):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"input": PAYLOAD})
    samples = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            connection.request("POST", "/runsync", body=body, headers=JSON_HEADERS)
            response = connection.getresponse()
            data = response.read()
            samples.append(time.perf_counter() - start)
            if response.status != 200 or json.loads(data).get("status") != "COMPLETED":
                raise RuntimeError(f"/runsync: HTTP {response.status}: {data[:300]!r}")
    finally:
        connection.close()
    return samples


def fleet_kill_test(procs, redis_url, client):
    extra = {"FLEET_LEASE_SECONDS": FLEET_LEASE} if FLEET_LEASE else {}
    port, names = start_fleet(procs, redis_url, client, extra)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        submitted = time.monotonic()
        ids = []
        for _ in range(KILL_JOBS):
            status, body = post(connection, "/run", {"input": {"sleep": KILL_SLEEP}})
            if status != 200:
                raise RuntimeError(f"/run: HTTP {status}: {body[:300]!r}")
            ids.append(json.loads(body)["id"])
        time.sleep(max(0.0, submitted + KILL_AFTER - time.monotonic()))
        # Who runs what, from the job records (fleet:{E}:job:<id>: status, worker = RUNPOD_POD_ID).
        held = {name: 0 for name in names[1:]}
        for job_id in ids:
            with contextlib.suppress(redis.RedisError):
                state, worker = client.hmget(f"fleet:{{{ENDPOINT}}}:job:{job_id}", "status", "worker")
                if state == b"IN_PROGRESS" and worker and worker.decode().startswith("bench-worker-"):
                    name = "worker" + worker.decode().removeprefix("bench-worker-")
                    if name in held:
                        held[name] += 1
        victim = max(held, key=lambda name: held[name])
        if not any(held.values()):
            print("  warning: no job record named a worker (fleet:{E}:job:<id> status IN_PROGRESS, worker "
                  "bench-worker-N = RUNPOD_POD_ID); killing worker1, its share unknown", flush=True)
        procs.kill(victim)
        killed = time.monotonic()
        finished = {}
        while len(finished) < len(ids) and time.monotonic() < killed + KILL_BOUND:
            for job_id in ids:
                if job_id in finished:
                    continue
                status, body = get(connection, f"/status/{job_id}")
                if status == 200:
                    report = json.loads(body)
                    if report.get("status") in FINAL:
                        finished[job_id] = (report["status"], time.monotonic() - killed)
            time.sleep(0.1)
        connection.close()
        return kill_summary(ids, finished, held[victim] if any(held.values()) else None, sum(held.values()))
    finally:
        procs.stop(*names)


def kill_summary(ids, finished, victim_held, running):
    completed = [seconds for state, seconds in finished.values() if state in ("COMPLETED", "SUCCESS")]
    return {"jobs": len(ids), "victim_held": victim_held, "running": running, "completed": len(completed),
            "failed": len(finished) - len(completed), "lost": len(ids) - len(finished),
            "last": max(completed) if completed else None}


def fleet_side(procs, redis_port, client, directory):
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    out = {}
    client.flushall()
    port, names = start_fleet(procs, redis_url, client)
    local_port = free_port()
    procs.start("local", [ECHO, "--local", "--port", str(local_port)], quiet_env(WORKER_CONCURRENCY=str(CONCURRENCY)))
    wait_until(lambda: runsync_answers(local_port), 60, "plain echo --local", check=lambda: procs.check("local"))
    try:
        fleet_batch(port, min(JOBS, 1000))  # warm-up
        out["idle"] = idle_rate(client)
        client.config_resetstat()
        elapsed, counts = fleet_batch(port, JOBS)
        out["commands"] = commandstats(client)
        out["rate"] = JOBS / elapsed
        out["batch"] = counts
        print(f"  fleet: {JOBS} jobs in {elapsed:.2f} s = {out['rate']:,.0f} jobs/s ({counts})", flush=True)
        with monitored(redis_port, directory, "fleet") as split:
            fleet_batch(port, MONITOR_JOBS)
        out["split"] = split

        # Sequential /runsync: through the gateway (fleet) and in process (plain --local), alternating.
        runsync_latencies(port, 100)
        runsync_latencies(local_port, 100)
        fleet_samples, local_samples, differences = [], [], []
        for index in range(ROUNDS):
            order = (("fleet", port), ("local", local_port)) if index % 2 == 0 else (("local", local_port), ("fleet", port))
            round_p50 = {}
            for name, target in order:
                samples = runsync_latencies(target, ROUND_JOBS)
                (fleet_samples if name == "fleet" else local_samples).extend(samples)
                round_p50[name] = statistics.median(samples)
            differences.append(round_p50["fleet"] - round_p50["local"])
        out["latency"] = fleet_samples
        out["local_latency"] = local_samples
        out["differences"] = sorted(differences)
        print(f"  fleet /runsync p50 {statistics.median(fleet_samples) * 1e3:.3f} ms, p99 {percentile(fleet_samples, 0.99) * 1e3:.3f} ms; "
              f"plain --local p50 {statistics.median(local_samples) * 1e3:.3f} ms", flush=True)
    finally:
        procs.stop(*names, "local")
    client.flushall()
    out["kill"] = fleet_kill_test(procs, redis_url, client)
    print(f"  fleet kill: {out['kill']}", flush=True)
    return out


# MARK: Celery

def celery_env(redis_url, track_started=False):
    env = quiet_env(BENCH_REDIS_URL=redis_url, PYTHONPATH=BENCH_DIR)
    if track_started:
        env["BENCH_TRACK_STARTED"] = "1"
    return env


def start_celery(procs, redis_url, app, track_started=False):
    names = []
    for index in range(1, WORKERS + 1):
        name = f"celery{index}"
        procs.start(name, [os.path.abspath(PYTHON), "-m", "celery", "-A", "celery_peer_tasks", "worker", "--pool", CELERY_POOL,
                           "--concurrency", str(CONCURRENCY), "--loglevel", "WARNING", "--hostname", f"w{index}@bench"],
                    celery_env(redis_url, track_started), cwd=BENCH_DIR)
        names.append(name)
    wait_until(lambda: len(app.control.ping(timeout=0.5)) >= WORKERS, 60, "the Celery workers to answer a ping",
               check=lambda: procs.check(*names))
    return names


def celery_batch(tasks, jobs):
    start = time.perf_counter()
    results = [tasks.noop.delay(PAYLOAD) for _ in range(jobs)]
    for result in results:
        if result.get(timeout=BATCH_TIMEOUT) != PAYLOAD:
            raise RuntimeError(f"Celery noop answered {result.result!r}")
    return time.perf_counter() - start


def celery_latencies(tasks, count):
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        tasks.noop.delay(PAYLOAD).get(timeout=60)
        samples.append(time.perf_counter() - start)
    return samples


def parent_pid(pid):
    with contextlib.suppress(OSError, IndexError, ValueError):
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    return None


def celery_kill_test(procs, redis_url, tasks):
    names = start_celery(procs, redis_url, tasks.app, track_started=True)
    try:
        submitted = time.monotonic()
        results = [tasks.sleep.delay(KILL_SLEEP) for _ in range(KILL_JOBS)]
        time.sleep(max(0.0, submitted + KILL_AFTER - time.monotonic()))
        # Who runs what: STARTED records carry the pid of the process running the task.
        pids = {procs.running[name].pid: name for name in names}
        held = {name: 0 for name in names}
        for result in results:
            meta = tasks.app.backend.get_task_meta(result.id)
            if meta.get("status") == "STARTED" and isinstance(meta.get("result"), dict):
                pid = meta["result"].get("pid")
                name = pids.get(pid) or pids.get(parent_pid(pid))
                if name:
                    held[name] += 1
        victim = max(held, key=lambda name: held[name])
        procs.kill(victim)
        killed = time.monotonic()
        finished = {}
        while len(finished) < len(results) and time.monotonic() < killed + KILL_BOUND:
            for result in results:
                if result.id in finished:
                    continue
                state = tasks.app.backend.get_task_meta(result.id).get("status")
                if state in ("SUCCESS", "FAILURE", "REVOKED"):
                    finished[result.id] = (state, time.monotonic() - killed)
            time.sleep(0.1)
        return kill_summary([result.id for result in results], finished, held[victim], sum(held.values()))
    finally:
        procs.stop(*names)


def celery_side(procs, redis_port, client, directory):
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    os.environ["BENCH_REDIS_URL"] = redis_url
    import celery
    import celery_peer_tasks as tasks

    out = {"version": celery.__version__}
    client.flushall()
    names = start_celery(procs, redis_url, tasks.app)
    try:
        celery_batch(tasks, min(JOBS, 500))  # warm-up
        out["idle"] = idle_rate(client)
        client.config_resetstat()
        elapsed = celery_batch(tasks, JOBS)
        out["commands"] = commandstats(client)
        out["rate"] = JOBS / elapsed
        print(f"  celery: {JOBS} jobs in {elapsed:.2f} s = {out['rate']:,.0f} jobs/s", flush=True)
        with monitored(redis_port, directory, "celery") as split:
            celery_batch(tasks, MONITOR_JOBS)
        out["split"] = split
        celery_latencies(tasks, 100)
        out["latency"] = celery_latencies(tasks, ROUNDS * ROUND_JOBS)
        print(f"  celery delay().get() p50 {statistics.median(out['latency']) * 1e3:.3f} ms, "
              f"p99 {percentile(out['latency'], 0.99) * 1e3:.3f} ms", flush=True)
    finally:
        procs.stop(*names)
    client.flushall()
    out["kill"] = celery_kill_test(procs, redis_url, tasks)
    print(f"  celery kill: {out['kill']}", flush=True)
    return out


# MARK: Report

def ms(seconds):
    return f"{seconds * 1e3:.3f} ms"


def report(fleet, peer):
    version = peer["version"] if peer else "5"
    sides = [side for side in (fleet, peer)]

    def row(measure, render, ratio=None, goal=""):
        cells = [render(side) if side else "–" for side in sides]
        together = ratio(fleet, peer) if ratio and fleet and peer else ""
        print(f"| {measure} | {cells[0]} | {cells[1]} | {together} | {goal} |")

    rate = lambda side: side["rate"]
    total = lambda side: sum(side["commands"].values())
    p50 = lambda side: percentile(side["latency"], 0.5)
    p99 = lambda side: percentile(side["latency"], 0.99)

    def killed(side):
        kill = side["kill"]
        ran = "?" if kill["victim_held"] is None else kill["victim_held"]
        text = (f"{kill['completed']} of {kill['jobs']} (the killed worker ran {ran}; "
                f"lost {kill['lost']}, failed {kill['failed']}")
        if kill["last"] is not None:
            text += f"; last result {kill['last']:.1f} s after the kill"
        return text + ")"

    print()
    print(f"| measure | fleet (swift echo) | Celery {version} | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    row(f"no-op jobs/s: {JOBS} jobs submitted, all collected; {WORKERS} worker processes × {CONCURRENCY}",
        lambda side: f"{rate(side):,.0f}", lambda f, p: f"{rate(f) / rate(p):.1f}×", "≥ 10×")
    row("sequential submit→result p50 (/runsync; delay().get())", lambda side: ms(p50(side)),
        lambda f, p: f"{p50(f) / p50(p):.2f}×", "≤ 0.2×")
    row("sequential submit→result p99", lambda side: ms(p99(side)), lambda f, p: f"{p99(f) / p99(p):.2f}×")
    row(f"Redis commands per job, the {JOBS}-job run (incl. those Lua scripts run)", lambda side: f"{total(side) / JOBS:.1f}",
        lambda f, p: f"{total(f) / total(p):.2f}×")
    row(f"  of which sent by clients / run inside scripts (MONITOR, {MONITOR_JOBS} jobs)",
        lambda side: f"{side['split']['client'] / MONITOR_JOBS:.1f} / {side['split']['script'] / MONITOR_JOBS:.1f}")
    row(f"Redis commands/s, no jobs ({WORKERS} idle workers + gateway/client)", lambda side: f"{side['idle']:.1f}")
    row(f"SIGKILL of one worker {KILL_AFTER} s in: jobs ({KILL_SLEEP:.0f} s each) with a result within "
        f"{KILL_BOUND:.0f} s of the kill", killed, goal="all")

    if fleet and (fleet["batch"]["refused"] or fleet["batch"]["resent"] or fleet["batch"]["completed"] != JOBS):
        print(f"(fleet client, the {JOBS}-job run: {fleet['batch']}; refused /run answers are submitted again, "
              "resent ones are /run requests wrk lost with a failed connection, after a 2 s stall)")

    if fleet:
        differences = fleet["differences"]
        fleet_p50, local_p50 = statistics.median(fleet["latency"]), statistics.median(fleet["local_latency"])
        fleet_p99, local_p99 = percentile(fleet["latency"], 0.99), percentile(fleet["local_latency"], 0.99)
        print()
        print(f"| /runsync, sequential, {ROUNDS} alternating rounds of {ROUND_JOBS} | fleet (gateway + workers) "
              f"| plain `echo --local` (in process) | difference | goal |")
        print("|---|---:|---:|---:|---|")
        print(f"| p50 (all rounds) | {ms(fleet_p50)} | {ms(local_p50)} | {ms(fleet_p50 - local_p50)} | ≤ 1 ms |")
        print(f"| p99 (all rounds) | {ms(fleet_p99)} | {ms(local_p99)} | {ms(fleet_p99 - local_p99)} | |")
        print(f"| p50 difference, median round (rounds {ms(differences[0])} to {ms(differences[-1])}) | | "
              f"| {ms(differences[len(differences) // 2])} | ≤ 1 ms |")

    present = [(name, side) for name, side in (("fleet", fleet), (f"Celery {version}", peer)) if side]
    commands = sorted({command for _, side in present for command in side["commands"]},
                      key=lambda command: (-max(side["commands"].get(command, 0) for _, side in present), command))
    print()
    print(f"| Redis command (INFO commandstats over the {JOBS}-job run), calls per job | "
          + " | ".join(name for name, _ in present) + " |")
    print("|---|" + "---:|" * len(present))
    for command in commands:
        print(f"| {command} | " + " | ".join(f"{side['commands'].get(command, 0) / JOBS:.2f}" for _, side in present) + " |")
    print("| total | " + " | ".join(f"{total(side) / JOBS:.2f}" for _, side in present) + " |")


def main():
    if not os.access(ECHO, os.X_OK) and ONLY != "celery":
        raise SystemExit(f"{ECHO} not found: build it with scripts/build-release.sh echo (benchmarks/run.sh fleet does)")
    shape = (f"gateway --gateway-only + {WORKERS} echo workers" if SHAPE == "gateway-only"
             else f"a gateway that runs jobs + {WORKERS - 1} echo worker(s)")
    print(f"fleet benchmark: fleet mode ({shape}, {WORKERS} processes running jobs × WORKER_CONCURRENCY={CONCURRENCY}) "
          f"vs Celery (Redis broker and backend, acks_late, {WORKERS} worker processes, --pool {CELERY_POOL} "
          f"--concurrency {CONCURRENCY}); one redis-server for both; one run")
    print(f"CPU: {cpu_description()}")
    print(f"throughput: {JOBS} no-op jobs; fleet client wrk -t1 -c{CONNECTIONS} (/run, then /status-sync), "
          f"Celery client delay() each then .get() each, one thread")
    lease = f"FLEET_LEASE_SECONDS={FLEET_LEASE}" if FLEET_LEASE else "FLEET_LEASE_SECONDS unset (default 15 s)"
    print(f"kill test: {KILL_JOBS} jobs of {KILL_SLEEP:.0f} s, SIGKILL at {KILL_AFTER} s, bound {KILL_BOUND:.0f} s after the kill; "
          f"fleet {lease}; Celery visibility timeout unset (default 1 h)", flush=True)
    directory = tempfile.mkdtemp(prefix="bench-fleet-")
    procs = Processes(directory)
    server, redis_port, redis_dir = start_redis()
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    print(f"redis-server {next((v.split('=')[1] for v in version if v.startswith('v=')), '?')} on port {redis_port} "
          f"(--save '' --appendonly no); logs in {directory}", flush=True)
    client = redis.Redis(host="127.0.0.1", port=redis_port)
    fleet = peer = None
    failed = False
    try:
        if ONLY != "celery":
            fleet = fleet_side(procs, redis_port, client, directory)
        if ONLY != "fleet":
            peer = celery_side(procs, redis_port, client, directory)
        report(fleet, peer)
    except BaseException:
        failed = True
        raise
    finally:
        procs.stop()
        client.close()
        stop_process(server)
        shutil.rmtree(redis_dir, ignore_errors=True)
        if failed:
            print(f"(process logs kept in {directory})", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
