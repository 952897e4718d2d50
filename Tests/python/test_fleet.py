"""Fleet mode (issue 28) with the real processes: a private redis-server (AOF, fsync always), gateways
(`echo --local --port 0 --gateway-only` with QUEUE_URL) and workers (`echo` with QUEUE_URL, no HTTP) of
one endpoint, driven by the official runpod client and plain HTTP, under SIGKILLs of workers, gateways
and Redis.

One module-scoped fleet (endpoint `fleet-py`: gateways A and B, workers w1-w3) serves the tests that
only look at their own jobs; tests that change the fleet's settings, count its totals or break it get
a fleet of their own on a fresh ENDPOINT_ID (`make_fleet`). A supervisor thread restarts any worker
that dies (killed by a test or crashed by a job), with the same RUNPOD_POD_ID, as a pod restart would.
Every process is started here and stopped by its PID.

FLEET_CHAOS_JOBS (default 2000) sets how many jobs the chaos test runs.
"""
import concurrent.futures
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from workers import SERVING

ECHO = os.environ.get("ECHO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "echo"))
KEY = "fleet-test-key"
# Short leases so that a killed worker's jobs run again within seconds.
LEASE = 3
HEARTBEAT = 1
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
CHAOS_JOBS = int(os.environ.get("FLEET_CHAOS_JOBS", "2000"))
FLEET_WORKER = re.compile(r"Fleet worker")
# Settings of the environment the tests run in that would change how the fleet behaves.
STRIPPED_PREFIXES = ("RUNPOD_", "FLEET_", "REDIS_", "RATE_LIMIT_")
STRIPPED = {"QUEUE_URL", "ENDPOINT_ID", "ENDPOINT_API_KEY", "MAX_ATTEMPTS", "WORKER_CONCURRENCY", "PORT", "PORT_HEALTH",
            "QUEUED_INPUT_MB"}
# Loopback requests never go through a proxy the environment may name.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# MARK: helpers


class Reply:
    """An HTTP answer: status, headers, body text and its JSON (None when it is not JSON)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"HTTP {self.status}: {self.text[:500]}"


def call(method, url, body=None, headers=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def wait_until(check, timeout, what, detail=lambda: "", interval=0.05):
    """`check()`'s first truthy value; fails naming `what` (and `detail()`) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}. {detail()}")
        time.sleep(interval)


def run_job(base, job_input, headers=None):
    """POST /run; the job id."""
    reply = call("POST", f"{base}/run", {"input": job_input}, headers=headers)
    assert reply.status == 200, f"/run on {base}: {reply!r}"
    assert reply.json["status"] == "IN_QUEUE"
    return reply.json["id"]


def final_report(base, job_id, timeout):
    """Polls /status until the job is final; its report. Non-200 answers (a gateway reconnecting to
    Redis) are polled through until the deadline."""
    last = []

    def check():
        try:
            reply = call("GET", f"{base}/status/{job_id}", timeout=5)
        except (OSError, http.client.HTTPException) as error:
            last[:] = [error]
            return None
        last[:] = [reply]
        return reply.json if reply.status == 200 and reply.json and reply.json.get("status") in FINAL else None

    return wait_until(check, timeout, f"job {job_id} to be final on {base}", lambda: f"last answer: {last}", interval=0.1)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fleet_env(**settings):
    env = {name: value for name, value in os.environ.items()
           if name not in STRIPPED and not name.startswith(STRIPPED_PREFIXES)}
    env.update(FLEET_LEASE_SECONDS=str(LEASE), FLEET_HEARTBEAT_SECONDS=str(HEARTBEAT))
    env.update({name: str(value) for name, value in settings.items()})
    return env


# MARK: processes


class RedisServer:
    """A private redis-server on a free loopback port, persisting every write (AOF, fsync always) in
    `directory`, so that `kill()` then `start()` is a crash and restart that loses nothing acknowledged."""

    def __init__(self, directory, password=None):
        self.server = shutil.which("redis-server")
        self.client = shutil.which("redis-cli")
        if not self.server or not self.client:
            pytest.fail("redis-server and redis-cli must be on PATH (scripts/install-deps.sh --test installs them)")
        self.directory = str(directory)
        self.password = password
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        args = [self.server, "--bind", "127.0.0.1", "--port", str(self.port), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--dir", self.directory, "--loglevel", "warning",
                "--logfile", os.path.join(self.directory, "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers():
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited ({self.proc.returncode}): {self.log()}")
            return self.cli("PING") == "PONG"  # not while it loads its AOF (LOADING)

        wait_until(answers, 15, f"redis-server on port {self.port}", self.log)

    def log(self):
        try:
            with open(os.path.join(self.directory, "redis.log")) as file:
                return file.read()[-2000:]
        except OSError:
            return ""

    def cli(self, *args):
        """redis-cli's answer, one line per element (its output when not on a terminal)."""
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        done = subprocess.run([self.client, "-h", "127.0.0.1", "-p", str(self.port), *auth, *args],
                              capture_output=True, text=True, timeout=10)
        return done.stdout.strip("\n")

    def scan(self, pattern):
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        done = subprocess.run([self.client, "-h", "127.0.0.1", "-p", str(self.port), *auth, "--scan", "--pattern", pattern],
                              capture_output=True, text=True, timeout=10)
        return set(done.stdout.split())

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class FleetProcess:
    """One `echo` process; its output (standard error and output together) is drained by a thread from
    the start, into `log`, and `ready` is set at the first line matching `ready_pattern`."""

    def __init__(self, name, args, env, ready_pattern):
        self.name = name
        self.log = []
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.match = None
        self.killed = False  # by the test, not by itself
        self.base = None
        self.proc = subprocess.Popen([ECHO, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        self.pid = self.proc.pid
        threading.Thread(target=self._drain, args=(ready_pattern,), daemon=True).start()

    def _drain(self, ready_pattern):
        for line in self.proc.stdout:
            self.log.append(line)
            if not self.ready.is_set():
                match = ready_pattern.search(line)
                if match:
                    self.match = match
                    self.ready.set()
        self.ended.set()

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.ended.is_set() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} never became ready (exit {self.proc.returncode}):\n{self.text}")
        return self.match

    @property
    def alive(self):
        return self.proc.poll() is None

    @property
    def text(self):
        return "".join(self.log)

    def kill(self):
        """SIGKILL, as a crash or an evicted pod."""
        if self.alive:
            self.killed = True
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self):
        if self.alive:
            os.kill(self.pid, signal.SIGTERM)

    def stop(self, grace=5):
        self.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()


class Fleet:
    """Gateways and workers of one endpoint on one Redis. Workers are `w1`, `w2`, … (their
    RUNPOD_POD_ID); a supervisor thread restarts any that dies and records the death."""

    def __init__(self, redis, endpoint, gateways=2, workers=3, env=None, gateway_args=("--gateway-only",),
                 queue_url=None, strict_ping=True):
        self.redis = redis
        self.endpoint = endpoint
        self.env = fleet_env(QUEUE_URL=queue_url or redis.url, ENDPOINT_ID=endpoint, **(env or {}))
        self.gateway_args = tuple(gateway_args)
        self.strict_ping = strict_ping
        self.lock = threading.RLock()
        self.gateways = []
        self.workers = {}
        self.incarnations = []  # every worker process ever started, for their logs
        self.deaths = []  # (worker id, exit status, killed by the test)
        self.errors = []
        self.closed = False
        try:
            for index in range(gateways):
                self.gateways.append(self._start_gateway(index))
            for number in range(1, workers + 1):
                self._spawn_worker(f"w{number}")
            for worker in list(self.workers.values()):
                worker.wait_ready()
        except BaseException:
            self.close()
            raise
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    # Gateways

    def _start_gateway(self, index):
        name = "gateway " + "AB"[index] if index < 2 else f"gateway {index}"
        env = dict(self.env, RUNPOD_API_KEY=KEY, RUNPOD_POD_ID=f"g{index}")
        gateway = FleetProcess(name, ["--local", "--port", "0", *self.gateway_args], env, SERVING)
        try:
            port = int(gateway.wait_ready().group(1))
            gateway.base = f"http://127.0.0.1:{port}"

            def pings():
                if not gateway.alive:
                    raise RuntimeError(f"{name} exited ({gateway.proc.returncode}):\n{gateway.text}")
                try:
                    reply = call("GET", f"{gateway.base}/ping", timeout=2)
                except OSError:
                    return False
                return reply.status == 200 or not self.strict_ping

            wait_until(pings, 30, f"{name} to answer /ping", lambda: gateway.text)
        except BaseException:
            gateway.stop()
            raise
        return gateway

    def kill_gateway(self, index):
        self.gateways[index].kill()

    def restart_gateway(self, index):
        """A new process (on a new port) in place of a stopped gateway."""
        self.gateways[index].stop()
        self.gateways[index] = self._start_gateway(index)

    # Workers

    def _spawn_worker(self, worker_id):
        env = dict(self.env, RUNPOD_POD_ID=worker_id)
        env.setdefault("WORKER_CONCURRENCY", "2")
        worker = FleetProcess(f"worker {worker_id}", [], env, FLEET_WORKER)
        with self.lock:
            self.workers[worker_id] = worker
            self.incarnations.append(worker)
        return worker

    def _supervise(self):
        failures = {}
        while not self.closed:
            with self.lock:
                for worker_id, worker in list(self.workers.items()):
                    if self.closed or worker.alive or worker_id in failures and failures[worker_id] > 5:
                        continue
                    self.deaths.append((worker_id, worker.proc.returncode, worker.killed))
                    if not worker.ready.is_set():
                        failures[worker_id] = failures.get(worker_id, 0) + 1
                        if failures[worker_id] > 5:
                            self.errors.append(f"worker {worker_id} keeps dying at start:\n{worker.text}")
                            continue
                    self._spawn_worker(worker_id)
            time.sleep(0.05)

    def kill_worker(self, worker_id):
        with self.lock:
            worker = self.workers[worker_id]
        worker.kill()
        return worker

    def ready_workers(self):
        with self.lock:
            return [worker_id for worker_id, worker in self.workers.items() if worker.alive and worker.ready.is_set()]

    def wait_workers_ready(self, timeout=30):
        wait_until(lambda: len(self.ready_workers()) == len(self.workers), timeout, f"the workers of {self.endpoint}",
                   lambda: "\n".join(self.errors))

    def crashes(self):
        """Deaths of workers the test did not kill."""
        with self.lock:
            return [death for death in self.deaths if not death[2]]

    def worker_log(self):
        with self.lock:
            return "".join(worker.text for worker in self.incarnations)

    # Redis

    def key(self, suffix):
        return "fleet:{" + self.endpoint + "}:" + suffix

    def stat(self, name):
        value = self.redis.cli("HGET", self.key("stats"), name)
        return int(value) if value else 0

    def close(self):
        self.closed = True
        supervisor = getattr(self, "_supervisor", None)
        if supervisor:
            supervisor.join(timeout=5)
        with self.lock:
            processes = [process for process in self.gateways + self.incarnations if process.alive]
        for process in processes:
            process.terminate()
        for process in processes:
            process.stop()


# MARK: fixtures


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("fleet-redis"))
    yield server
    server.kill()


@pytest.fixture
def private_redis(tmp_path_factory):
    """Redis servers of a test's own (one it kills, one with a password); killed after it."""
    servers = []

    def make(password=None):
        server = RedisServer(tmp_path_factory.mktemp("fleet-redis-private"), password=password)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


@pytest.fixture(scope="module")
def fleet(redis):
    """Endpoint `fleet-py`: gateways A and B (gateway only), workers w1-w3."""
    started = Fleet(redis, "fleet-py")
    yield started
    started.close()


@pytest.fixture
def make_fleet(redis):
    """Fleets on fresh ENDPOINT_IDs (`fleet-py-<tag>-<random>`), closed after the test."""
    fleets = []

    def make(tag, redis_server=None, **options):
        made = Fleet(redis_server or redis, f"fleet-py-{tag}-{uuid.uuid4().hex[:6]}", **options)
        fleets.append(made)
        return made

    yield make
    for made in fleets:
        made.close()


# MARK: the shared fleet


def test_official_client_across_gateways(fleet, monkeypatch):
    import runpod
    from runpod.endpoint.runner import Job

    a, b = fleet.gateways[0].base, fleet.gateways[1].base
    monkeypatch.setattr(runpod, "api_key", KEY)
    # The client reads the base URL when it is made: one Endpoint on each gateway.
    monkeypatch.setattr(runpod, "endpoint_url_base", f"{a}/v2")
    on_a = runpod.Endpoint(fleet.endpoint)
    monkeypatch.setattr(runpod, "endpoint_url_base", f"{b}/v2")
    on_b = runpod.Endpoint(fleet.endpoint)

    assert on_a.run_sync({"x": [1, 2, 3]}, timeout=30) == {"x": [1, 2, 3]}

    job_input = {"a": 1, "sleep": 0.5, "tag": uuid.uuid4().hex}
    job = on_a.run(job_input)
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    # Gateway B knows the job gateway A took, while it runs and once it is done.
    assert Job(fleet.endpoint, job.job_id, on_b.rp_client).status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    assert job.output(timeout=20) == job_input
    assert job.status() == "COMPLETED"
    seen_on_b = Job(fleet.endpoint, job.job_id, on_b.rp_client)
    assert seen_on_b.status() == "COMPLETED"
    assert seen_on_b.output() == job_input

    report = call("GET", f"{b}/v2/{fleet.endpoint}/status/{job.job_id}")
    assert report.status == 200, report
    assert report.json["id"] == job.job_id
    assert report.json["output"] == job_input
    assert report.json.get("workerId") in fleet.workers, report


def test_idempotency_key_across_gateways(fleet):
    a, b = fleet.gateways[0].base, fleet.gateways[1].base
    job_input = {"sleep": 0.2, "tag": uuid.uuid4().hex}
    key = {"Idempotency-Key": "fleet-idem-" + uuid.uuid4().hex}
    first = run_job(a, job_input, headers=key)
    for base in (b, a):
        again = call("POST", f"{base}/run", {"input": job_input}, headers=key)
        assert again.status == 200 and again.json["id"] == first, again
    report = final_report(b, first, 20)
    assert report["status"] == "COMPLETED"
    assert report["output"] == job_input


def test_worker_killed_mid_job_runs_again(fleet):
    a, b = fleet.gateways[0].base, fleet.gateways[1].base
    fleet.wait_workers_ready()
    completed_before = fleet.stat("completed")
    crashes = len(fleet.crashes())
    sleep = 2
    job_input = {"sleep": sleep, "tag": uuid.uuid4().hex}
    job_id = run_job(a, job_input)
    last = []

    def running_on_a_worker():
        reply = call("GET", f"{a}/status/{job_id}")
        last[:] = [reply]
        return reply.json if reply.json and reply.json.get("status") == "IN_PROGRESS" and reply.json.get("workerId") in fleet.workers else None

    victim = wait_until(running_on_a_worker, 10, "the job to be IN_PROGRESS on w1, w2 or w3", lambda: f"last: {last}")["workerId"]
    killed_at = time.monotonic()
    fleet.kill_worker(victim)

    # The lease expires, another worker (or the restarted one) takes it within a second, and runs it.
    report = final_report(b, job_id, LEASE + sleep + 3)
    elapsed = time.monotonic() - killed_at
    assert report["status"] == "COMPLETED", report
    assert report["output"] == job_input
    assert fleet.redis.cli("HGET", fleet.key(f"job:{job_id}"), "attempt") == "2"

    # Reported once: nothing changes after a further lease, and one completion was counted.
    time.sleep(LEASE + HEARTBEAT)
    for base in (a, b):
        again = call("GET", f"{base}/status/{job_id}")
        assert again.json["status"] == "COMPLETED" and again.json["output"] == job_input, again
    assert fleet.redis.cli("HGET", fleet.key(f"job:{job_id}"), "attempt") == "2"
    assert fleet.stat("completed") - completed_before == 1
    assert len(fleet.crashes()) == crashes, fleet.crashes()
    print(f"job {job_id}: {victim} killed, COMPLETED {elapsed:.1f} s later")
    fleet.wait_workers_ready()


def test_gateway_killed_during_runsync(fleet):
    """The job id is learnt from Redis: the one job record that appears while gateway A's /runsync
    is open (the shared fleet runs nothing else meanwhile)."""
    a = fleet.gateways[0]
    b = fleet.gateways[1].base
    records = fleet.key("job:*")
    before = fleet.redis.scan(records)
    job_input = {"sleep": 1, "tag": uuid.uuid4().hex}
    outcome = {}

    def runsync():
        try:
            outcome["reply"] = call("POST", f"{a.base}/runsync", {"input": job_input}, timeout=30)
        except Exception as error:  # the connection drops with the gateway: reset, or an incomplete answer
            outcome["error"] = error

    thread = threading.Thread(target=runsync, daemon=True)
    try:
        started = time.monotonic()
        thread.start()
        new = wait_until(lambda: fleet.redis.scan(records) - before, 10, "the /runsync job's record in Redis")
        time.sleep(max(0.0, 0.3 - (time.monotonic() - started)))
        assert thread.is_alive(), f"/runsync answered before gateway A was killed: {outcome}"
        fleet.kill_gateway(0)
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert "error" in outcome, f"/runsync answered although its gateway was killed: {outcome}"
        assert len(new) == 1, new
        job_id = new.pop().removeprefix(fleet.key("job:"))

        waited = call("GET", f"{b}/status-sync/{job_id}?wait=10000", timeout=20)
        assert waited.status == 200, waited
        report = final_report(b, job_id, 10)
        assert report["status"] == "COMPLETED", report
        assert report["output"] == job_input
    finally:
        thread.join(timeout=30)
        fleet.restart_gateway(0)


def test_job_record_not_json_fails_alone(fleet):
    a, b = fleet.gateways[0].base, fleet.gateways[1].base
    crashes = len(fleet.crashes())
    tag = uuid.uuid4().hex
    first = run_job(a, {"n": 1, "tag": tag})
    bad = "bad-" + tag
    record = fleet.key(f"job:{bad}")
    # A record as a gateway writes it, but whose request is not JSON, queued in one step (a
    # worker reading the entry before the record exists would rightly skip it as gone).
    entry = fleet.redis.cli(
        "EVAL",
        "local e = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'b', '7') "
        "redis.call('HSET', KEYS[2], 'request', 'garbage', 'status', 'IN_QUEUE', 'attempt', '0', 'max', '3', "
        "'entry', e, 'created', '0', 'retention', '60000') return e",
        "2", fleet.key("queue"), record, bad)
    assert re.fullmatch(r"\d+-\d+", entry), entry
    second = run_job(b, {"n": 2, "tag": tag})

    report = final_report(b, bad, LEASE + 10)
    assert report["status"] == "FAILED", report
    assert record in report.get("error", ""), report
    for job_id, n in ((first, 1), (second, 2)):
        done = final_report(a, job_id, 20)
        assert done["status"] == "COMPLETED" and done["output"] == {"n": n, "tag": tag}, done
    assert len(fleet.crashes()) == crashes, fleet.crashes()
    assert set(fleet.ready_workers()) == set(fleet.workers)


# MARK: fleets of their own


def test_poison_job_fails_after_max_attempts(make_fleet):
    fleet = make_fleet("poison", gateways=1, workers=3, env={"MAX_ATTEMPTS": 2})
    gateway = fleet.gateways[0].base
    job_id = run_job(gateway, {"crash": True})

    # Two starts, each ending its worker; the third take finds the attempts used up.
    report = final_report(gateway, job_id, 2 * (LEASE + 3) + 10)
    assert report["status"] == "FAILED", report
    assert re.search(r"\b2 (times|time\(s\)|attempts)", report.get("error", "")), report
    assert len(fleet.crashes()) == 2, fleet.crashes()
    assert int(fleet.redis.cli("XLEN", fleet.key("dead"))) >= 1
    assert job_id in fleet.redis.cli("XRANGE", fleet.key("dead"), "-", "+").split("\n")

    # The fleet keeps serving: the crashed workers are back, and a normal job completes.
    fleet.wait_workers_ready()
    job_input = {"after": "poison"}
    done = final_report(gateway, run_job(gateway, job_input), 20)
    assert done["status"] == "COMPLETED" and done["output"] == job_input, done
    assert len(fleet.crashes()) == 2, fleet.crashes()


def test_redis_killed_and_restarted_loses_no_acknowledged_job(private_redis, make_fleet):
    redis_server = private_redis()
    fleet = make_fleet("aof", redis_server=redis_server, gateways=1, workers=2)
    gateway = fleet.gateways[0]
    tag = uuid.uuid4().hex
    inputs = {}
    for n in range(20):
        job_input = {"sleep": 0.5, "n": n, "tag": tag}
        inputs[run_job(gateway.base, job_input)] = job_input
    # Most are still queued (4 slots, 0.5 s each) when Redis dies.
    redis_server.kill()

    for _ in range(3):
        refused = call("POST", f"{gateway.base}/run", {"input": {"while": "down"}}, timeout=30)
        assert refused.status == 503, refused
        assert re.fullmatch(r"\d+", refused.headers.get("Retry-After") or ""), dict(refused.headers)
        assert refused.json and refused.json.get("error"), refused
    assert gateway.alive

    redis_server.start()
    deadline = time.monotonic() + 60
    for job_id, job_input in inputs.items():
        report = final_report(gateway.base, job_id, max(1.0, deadline - time.monotonic()))
        assert report["status"] == "COMPLETED", report
        assert report["output"] == job_input
    after = {"after": "restart", "tag": tag}
    report = final_report(gateway.base, run_job(gateway.base, after), 20)
    assert report["status"] == "COMPLETED" and report["output"] == after
    assert gateway.alive
    assert not fleet.crashes(), fleet.crashes()


def test_chaos_kills_lose_no_job_and_finish_each_once(make_fleet):
    # MAX_ATTEMPTS high: a job that happens to be on three killed workers in a row is not the point here.
    fleet = make_fleet("chaos", gateways=2, workers=3, env={"MAX_ATTEMPTS": 20})
    bases = [gateway.base for gateway in fleet.gateways]
    seed = int(os.environ.get("FLEET_CHAOS_SEED", random.randrange(1 << 30)))
    chooser = random.Random(seed)
    stop = threading.Event()
    kills = []

    def chaos():
        while not stop.wait(0.5):
            victims = fleet.ready_workers()
            if victims:
                victim = chooser.choice(victims)
                fleet.kill_worker(victim)
                kills.append(victim)

    tag = uuid.uuid4().hex
    inputs = [{"sleep": 0.01, "n": n, "tag": tag} for n in range(CHAOS_JOBS)]
    killer = threading.Thread(target=chaos, daemon=True)
    pending = {}
    finals = {}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        killer.start()
        try:
            submitted = list(pool.map(lambda n: (n, call("POST", f"{bases[n % 2]}/run", {"input": inputs[n]}, timeout=30)),
                                      range(CHAOS_JOBS)))
            refused = [(n, reply) for n, reply in submitted if reply.status != 200]
            assert not refused, f"{len(refused)} submissions refused, first: {refused[:3]}"
            pending = {reply.json["id"]: n for n, reply in submitted}
            assert len(pending) == CHAOS_JOBS, "job ids repeat"
            ids = dict(pending)

            def status(item):
                job_id, n = item
                # Read on the gateway that did not take it.
                return job_id, call("GET", f"{bases[(n + 1) % 2]}/status/{job_id}", timeout=30)

            deadline = time.monotonic() + 120 + CHAOS_JOBS * 0.03
            while pending and time.monotonic() < deadline:
                for job_id, reply in pool.map(status, list(pending.items())):
                    if reply.status == 200 and reply.json["status"] in FINAL:
                        finals[job_id] = reply.json
                        del pending[job_id]
                if pending:
                    time.sleep(0.25)
        finally:
            stop.set()
            killer.join(timeout=30)
        assert not pending, f"{len(pending)} of {CHAOS_JOBS} jobs never ended (seed {seed}), e.g. {list(pending)[:5]}"
        wrong = [(job_id, report) for job_id, report in finals.items()
                 if report["status"] != "COMPLETED" or report.get("output") != inputs[ids[job_id]]]
        assert not wrong, f"{len(wrong)} jobs did not complete with their input (seed {seed}): {wrong[:5]}"
        assert kills, "the chaos thread killed no worker: the test proved nothing"

        # Once: after a further lease (any reclaim of a job already done would have happened), every
        # status is unchanged, each job was counted completed once, and nothing is left queued.
        fleet.wait_workers_ready()
        time.sleep(LEASE + HEARTBEAT)
        def essentials(report):
            return [report.get(name) for name in ("status", "output", "error", "workerId")]

        changed = [(job_id, reply) for job_id, reply in pool.map(status, ids.items())
                   if reply.status != 200 or essentials(reply.json) != essentials(finals[job_id])]
        assert not changed, f"{len(changed)} final statuses changed: {changed[:5]}"
    assert fleet.stat("completed") == CHAOS_JOBS
    assert fleet.stat("failed") == 0
    assert fleet.redis.cli("XLEN", fleet.key("queue")) == "0"
    assert fleet.redis.cli("XLEN", fleet.key("dead")) == "0"
    assert not fleet.crashes(), fleet.crashes()
    assert not fleet.errors, fleet.errors
    discarded = sum(line.count("discarded") for line in fleet.worker_log().splitlines())
    print(f"{CHAOS_JOBS} jobs, {len(kills)} workers killed (seed {seed}), {discarded} late results discarded")


# MARK: bad input


@pytest.mark.parametrize("mode", [[], ["--local", "--port", "0"]], ids=["worker", "gateway"])
def test_queue_url_not_redis_is_refused(mode):
    done = subprocess.run([ECHO, *mode], env=fleet_env(QUEUE_URL="ftp://x", ENDPOINT_ID="fleet-py-ftp"),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "QUEUE_URL" in done.stdout + done.stderr, done.stdout + done.stderr


def test_wrong_password_answers_503_and_gateway_keeps_running(private_redis, make_fleet):
    password = "right-" + uuid.uuid4().hex
    wrong = "wrong-" + uuid.uuid4().hex
    redis_server = private_redis(password=password)
    fleet = make_fleet("auth", redis_server=redis_server, gateways=1, workers=0, strict_ping=False,
                       queue_url=f"redis://:{wrong}@127.0.0.1:{redis_server.port}")
    gateway = fleet.gateways[0]
    for _ in range(2):
        reply = call("POST", f"{gateway.base}/run", {"input": {"a": 1}}, timeout=30)
        assert reply.status == 503, reply
        assert re.search(r"authenticat", reply.json["error"], re.IGNORECASE), reply
        assert wrong not in reply.text, "the password is shown in the answer"
        assert gateway.alive
    assert call("GET", f"{gateway.base}/ping").status in (200, 204, 503)
    assert gateway.alive


def test_key_of_wrong_type_is_named_and_gateway_keeps_serving(make_fleet):
    # A gateway that also takes jobs (no --gateway-only), with no workers beside it.
    fleet = make_fleet("wrongtype", gateways=1, workers=0, gateway_args=())
    gateway = fleet.gateways[0]
    stats = fleet.key("stats")
    assert fleet.redis.cli("SET", stats, "x") == "OK"
    reply = call("POST", f"{gateway.base}/run", {"input": {"a": 1}})
    assert reply.status in (500, 503), reply
    assert reply.json and stats in reply.json.get("error", ""), reply
    assert gateway.alive
    assert call("GET", f"{gateway.base}/ping").status == 200
    assert call("GET", f"{gateway.base}/status/no-such-job").status == 404

    # Repaired, it serves as before.
    fleet.redis.cli("DEL", stats)
    job_input = {"b": 2}
    report = final_report(gateway.base, run_job(gateway.base, job_input), 20)
    assert report["status"] == "COMPLETED" and report["output"] == job_input, report


# MARK: the rest of the guarantees


def test_worker_cut_off_past_its_lease_has_its_late_result_discarded(make_fleet):
    """A worker frozen (SIGSTOP: no renewals, as a network partition) past its lease: the job runs
    again on the other worker and completes once; thawed, the first worker's late result is
    discarded and logged, and the record keeps the second run's."""
    fleet = make_fleet("partition", gateways=1, workers=2, env={"WORKER_CONCURRENCY": 1})
    gateway = fleet.gateways[0].base
    job_id = run_job(gateway, {"sleep": 1.5, "tag": "partition"})
    report = wait_until(
        lambda: (r := call("GET", f"{gateway}/status/{job_id}").json).get("status") == "IN_PROGRESS" and r,
        10, "the job to start")
    frozen = fleet.workers[report["workerId"]]
    os.kill(frozen.proc.pid, signal.SIGSTOP)
    try:
        done = final_report(gateway, job_id, LEASE + 8)
        assert done["status"] == "COMPLETED" and done["workerId"] != report["workerId"], done
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)
    wait_until(lambda: "discarded" in frozen.text, 10, "the thawed worker to log its discarded result", lambda: frozen.text)
    again = call("GET", f"{gateway}/status/{job_id}").json
    assert again["status"] == "COMPLETED" and again["workerId"] == done["workerId"], again
    assert fleet.stat("completed") == 1


def test_cancel_reaches_the_running_worker_within_100_ms(make_fleet):
    """One worker running one job at a time: /cancel on the gateway frees it at once, so the next
    job starts within a few hundred milliseconds, not after the first one's 30 s."""
    fleet = make_fleet("cancel", gateways=2, workers=1, env={"WORKER_CONCURRENCY": 1})
    a, b = fleet.gateways[0].base, fleet.gateways[1].base
    job_id = run_job(a, {"sleep": 30})
    wait_until(lambda: call("GET", f"{a}/status/{job_id}").json.get("status") == "IN_PROGRESS", 10, "the job to start")
    started = time.monotonic()
    reply = call("POST", f"{b}/cancel/{job_id}")
    assert reply.status == 200 and reply.json["status"] == "CANCELLED", reply
    follow = call("POST", f"{a}/runsync", {"input": {"after": "cancel"}}, timeout=10)
    elapsed = time.monotonic() - started
    assert follow.json["status"] == "COMPLETED", follow
    # The cancelled task must have ended for the only slot to take the next job.
    assert elapsed < 1.0, f"the next job finished {elapsed:.3f} s after /cancel"
    assert call("GET", f"{a}/status/{job_id}").json["status"] == "CANCELLED"


def test_stream_and_progress_from_any_gateway(fleet):
    """Chunks a worker produces are read by /stream on either gateway, each chunk once in all."""
    a, b = fleet.gateways[0].base, fleet.gateways[1].base
    job_id = run_job(a, {"stream": 5, "sleep": 0.2})
    chunks = []
    deadline = time.time() + 20
    while time.time() < deadline:
        reply = call("GET", f"{b if len(chunks) % 2 else a}/stream/{job_id}")
        assert reply.status == 200, reply
        chunks += [item["output"] for item in reply.json["stream"]]
        if reply.json["status"] in FINAL:
            break
        time.sleep(0.05)
    assert chunks == [{"chunk": i} for i in range(5)], chunks


def test_webhook_sent_once_per_final_result(fleet):
    """A job with a webhook: one POST with the final report, even though two gateways could see it."""
    received = []
    import http.server

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        a = fleet.gateways[0].base
        reply = call("POST", f"{a}/run", {"input": {"hook": 1}, "webhook": f"http://127.0.0.1:{server.server_port}/hook"})
        job_id = reply.json["id"]
        final_report(a, job_id, 20)
        wait_until(lambda: received, 10, "the webhook")
        time.sleep(0.5)
        assert len(received) == 1, received
        assert received[0]["id"] == job_id and received[0]["status"] == "COMPLETED" and received[0]["output"] == {"hook": 1}
    finally:
        server.shutdown()


def test_gateway_that_runs_jobs_runs_them_as_it_queues_them_and_a_worker_rescues_its_death(make_fleet):
    """A gateway without --gateway-only starts a job itself when it has a free slot (the job's
    worker is the gateway); killed mid-job, its job runs again on a worker after the lease."""
    fleet = make_fleet("direct", gateways=1, workers=1, gateway_args=(), env={"WORKER_CONCURRENCY": 1})
    gateway = fleet.gateways[0]
    done = call("POST", f"{gateway.base}/runsync", {"input": {"quick": 1}}, timeout=10).json
    assert done["status"] == "COMPLETED" and done["workerId"] == "g0", done
    job_id = run_job(gateway.base, {"sleep": 1.5, "direct": True})
    wait_until(lambda: call("GET", f"{gateway.base}/status/{job_id}").json.get("workerId") == "g0", 5, "the gateway to run it")
    gateway.kill()
    fleet.gateways[0] = fleet._start_gateway(0)
    report = final_report(fleet.gateways[0].base, job_id, LEASE + 8)
    assert report["status"] == "COMPLETED" and report["output"] == {"sleep": 1.5, "direct": True}, report
    assert fleet.stat("completed") == 2


def test_execution_timeout_ends_the_job_timed_out_on_its_worker(fleet):
    """policy.executionTimeout: the worker running the job ends it TIMED_OUT and stops its task."""
    a, b = fleet.gateways[0].base, fleet.gateways[1].base
    reply = call("POST", f"{a}/run", {"input": {"sleep": 20}, "policy": {"executionTimeout": 500}})
    job_id = reply.json["id"]
    started = time.monotonic()
    report = final_report(b, job_id, 10)
    assert report["status"] == "TIMED_OUT", report
    assert time.monotonic() - started < 5, "the timeout took too long"
    # The worker's slot is free again: a quick job still completes.
    done = call("POST", f"{a}/runsync", {"input": {"after": "timeout"}}, timeout=10).json
    assert done["status"] == "COMPLETED", done


# MARK: a Redis Cluster


class RedisCluster:
    """Three masters (no replicas) on loopback, joined by `redis-cli --cluster create`: slots
    0-5460, 5461-10922 and 10923-16383 in port order. `url` names the first node; `cli` follows
    redirections (-c)."""

    def __init__(self, directory):
        self.server, self.client = shutil.which("redis-server"), shutil.which("redis-cli")
        self.directory = str(directory)
        self.ports = [self.cluster_port() for _ in range(3)]
        self.procs = []
        for port in self.ports:
            self.procs.append(subprocess.Popen(
                [self.server, "--bind", "127.0.0.1", "--port", str(port), "--cluster-enabled", "yes",
                 "--cluster-config-file", f"nodes-{port}.conf", "--save", "", "--appendonly", "no", "--dir", self.directory],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_until(lambda: self.node(port, "PING") == "PONG", 15, f"cluster node {port}")
        created = subprocess.run([self.client, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                                  "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stdout + created.stderr
        for port in self.ports:
            wait_until(lambda: "cluster_state:ok" in self.node(port, "CLUSTER", "INFO"), 30, f"node {port} to see the cluster")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.ports[0]}"

    @staticmethod
    def cluster_port():
        """A free port whose cluster bus port (+10000) is free and valid too."""
        for _ in range(200):
            port = random.randint(20000, 50000)
            if all(RedisCluster.free(candidate) for candidate in (port, port + 10000)):
                return port
        pytest.fail("no free pair of ports for a cluster node")

    @staticmethod
    def free(port):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    def node(self, port, *args):
        done = subprocess.run([self.client, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
        return done.stdout.strip("\n")

    def cli(self, *args):
        done = subprocess.run([self.client, "-c", "-h", "127.0.0.1", "-p", str(self.ports[0]), *args],
                              capture_output=True, text=True, timeout=10)
        return done.stdout.strip("\n")

    def master_of(self, key):
        slot = int(self.node(self.ports[0], "CLUSTER", "KEYSLOT", key))
        return 0 if slot <= 5460 else 1 if slot <= 10922 else 2

    def kill(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_two_endpoints_on_a_redis_cluster(tmp_path_factory):
    """Gateways and workers of two endpoints whose keys live on different masters of a 3-master
    Cluster: each serves its own jobs (blocked reads on the endpoint's master, scripts routed by the
    hash tag), the official client's /runsync and /run + /status work, and a killed worker's job runs
    again."""
    cluster = RedisCluster(tmp_path_factory.mktemp("fleet-cluster"))
    fleets = []
    try:
        names, masters = [], set()
        for candidate in (f"cl-{i}" for i in range(40)):
            master = cluster.master_of("fleet:{" + candidate + "}:queue")
            if master not in masters:
                masters.add(master)
                names.append(candidate)
            if len(names) == 2:
                break
        assert len(names) == 2
        for name in names:
            fleets.append(Fleet(cluster, name, gateways=1, workers=2, env={"WORKER_CONCURRENCY": 1}))
        for fleet, name in zip(fleets, names):
            gateway = fleet.gateways[0].base
            done = call("POST", f"{gateway}/runsync", {"input": {"endpoint": name}}, timeout=15).json
            assert done["status"] == "COMPLETED" and done["output"] == {"endpoint": name}, done
            job_id = run_job(gateway, {"sleep": 1.5, "endpoint": name})
            report = wait_until(
                lambda: (r := call("GET", f"{gateway}/status/{job_id}").json).get("status") == "IN_PROGRESS" and r,
                10, "the job to start")
            fleet.kill_worker(report["workerId"])
            final = final_report(gateway, job_id, LEASE + 10)
            assert final["status"] == "COMPLETED" and final["output"] == {"sleep": 1.5, "endpoint": name}, final
            # Nothing of this endpoint landed on another master.
            assert cluster.cli("EXISTS", "fleet:{" + name + "}:queue") == "1"
    finally:
        for fleet in fleets:
            fleet.close()
        cluster.kill()
