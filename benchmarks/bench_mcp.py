#!/usr/bin/env python3
"""MCP benchmark, one run on one machine: `tools/call` of the echo tool over streamable HTTP,
wrk with one thread and 16 connections, against FastMCP serving the same tool stateless with JSON
responses. Ours: the release `echo --local` (the call runs as a job, as /runsync does).
Usage: benchmarks/run.sh mcp
"""
import json
import os
import re
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_server import PYTHON, RELEASE, ROOT, SECONDS, echo_command, free_port, quiet_env  # noqa: E402

LUA = os.path.join(ROOT, "benchmarks", "mcp_call.lua")
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"prompt": "hello", "n": 1}}}


def call(port):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=json.dumps(CALL).encode(), headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def serve(command, env):
    port = free_port()
    proc = subprocess.Popen(command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time
    deadline = time.time() + 60
    while True:
        try:
            answer = call(port)
            assert answer["result"]["structuredContent"] == {"prompt": "hello", "n": 1}, answer
            return proc, port
        except (OSError, ValueError):
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"{command(port)} never answered a tools/call")
            time.sleep(0.1)


def wrk(port):
    url = f"http://127.0.0.1:{port}/mcp"
    subprocess.run(["wrk", "-t1", "-c16", "-d2s", "-s", LUA, url], capture_output=True)  # warm-up
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{SECONDS}s", "--latency", "-s", LUA, url],
                         capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = int(re.search(r"bad answers: (\d+)", out).group(1))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rate": rate, "p50": float(p50.group(1)) * scale[p50.group(2)], "p99": float(p99.group(1)) * scale[p99.group(2)],
            "errors": errors, "socket": socket_errors.group(1) if socket_errors else "none"}


def measure(command, env):
    proc, port = serve(command, env)
    try:
        return wrk(port)
    finally:
        proc.terminate()
        proc.wait()


def main():
    print(f"MCP tools/call benchmark (wrk -t1 -c16, {SECONDS} s; same machine, one run)")
    results = {
        "swift echo --local": measure(echo_command, quiet_env(WORKER_CONCURRENCY="16")),
        "FastMCP 4.2.3 (stateless, JSON)": measure(
            lambda port: [PYTHON, os.path.join(ROOT, "benchmarks", "fastmcp_echo_server.py"), str(port)],
            quiet_env(FASTMCP_LOG_LEVEL="WARNING")),
    }
    for name, r in results.items():
        print(f"  {name:32s} {r['rate']:10,.0f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  "
              f"bad answers {r['errors']}  socket errors {r['socket']}", flush=True)
    ours, peer = results["swift echo --local"], results["FastMCP 4.2.3 (stateless, JSON)"]
    print()
    print("| tools/call (echo), wrk -t1 -c16 | swift | FastMCP 4.2.3 | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| requests/s | {ours['rate']:,.0f} | {peer['rate']:,.0f} | {ours['rate'] / peer['rate']:.1f}x |")
    print(f"| p50 | {ours['p50']:.2f} ms | {peer['p50']:.2f} ms | {ours['p50'] / peer['p50']:.3f}x |")
    print(f"| p99 | {ours['p99']:.2f} ms | {peer['p99']:.2f} ms | {ours['p99'] / peer['p99']:.3f}x |")
    print(f"| bad answers | {ours['errors']} | {peer['errors']} | |")


if __name__ == "__main__":
    main()
