#!/usr/bin/env python3
"""PostgresClient vs pgbench, one run on one machine, the same throwaway PostgreSQL 15 cluster:
pgbench's select-only transaction (a point SELECT by primary key, prepared) on one connection and
on eight, `pgbench -S --protocol=prepared -c N -j N` against `postgres-bench` (PostgresClient, a
pool of N, N tasks), its tasks on the client's executor and on the shared concurrency pool; three
alternating rounds of 8 s, medians.
Usage: benchmarks/run.sh postgres
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_server import RELEASE, free_port  # noqa: E402

BIN = "/usr/lib/postgresql/15/bin"
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))


def as_postgres(command):
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


def main():
    directory = tempfile.mkdtemp(prefix="bench-postgres-")
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
    port = free_port()
    subprocess.run(as_postgres([f"{BIN}/initdb", "-D", f"{directory}/data", "-A", "trust", "-U", "postgres", "--no-sync"]),
                   check=True, capture_output=True)
    server = subprocess.Popen(as_postgres([f"{BIN}/postgres", "-D", f"{directory}/data", "-p", str(port), "-k", directory,
                                           "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if subprocess.run([f"{BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0:
                break
            time.sleep(0.05)
        subprocess.run([f"{BIN}/pgbench", "-i", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        variants = {"on its executor": ["--client-executor"], "on the shared pool": []}
        samples = {clients: {name: [] for name in [*variants, "pgbench"]} for clients in (1, 8)}
        for _ in range(3):
            for clients in (1, 8):
                for name, flags in variants.items():
                    ours = subprocess.run([os.path.join(RELEASE, "postgres-bench"), *flags, url, str(SECONDS), "100000", str(clients)],
                                          capture_output=True, text=True, check=True).stdout
                    samples[clients][name].append(float(re.search(rf"clients {clients}: (\d+) tps", ours).group(1)))
                peer = subprocess.run([f"{BIN}/pgbench", "-S", "--protocol=prepared", "-c", str(clients), "-j", str(clients),
                                       "-T", str(SECONDS), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "postgres"],
                                      capture_output=True, text=True).stdout
                samples[clients]["pgbench"].append(float(re.search(r"tps = ([\d.]+)", peer).group(1)))
        median = lambda values: sorted(values)[len(values) // 2]
        print(f"PostgresClient vs pgbench -S --protocol=prepared ({SECONDS} s, median of 3 alternating rounds)")
        print()
        print("| point SELECT | PostgresClient, tasks on its executor | ratio | PostgresClient, tasks on the shared pool | ratio | pgbench |")
        print("|---|---:|---:|---:|---:|---:|")
        for clients, runs in samples.items():
            peer = median(runs["pgbench"])
            cells = " | ".join(f"{median(runs[name]):,.0f} tps | {median(runs[name]) / peer:.0%}" for name in variants)
            print(f"| {clients} connection{'s' if clients > 1 else ''} | {cells} | {peer:,.0f} tps |")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
