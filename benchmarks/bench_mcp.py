#!/usr/bin/env python3
"""MCP benchmark, one run on one machine: `tools/call` of the echo tool over streamable HTTP,
wrk with one thread and 16 connections, against FastMCP serving the same tool stateless with JSON
responses. Ours: the release `echo --local` (the call runs as a job, as /runsync does).

Then with authorization (issue 30): an authorization server in this process (a thread serving RFC
8414 metadata and a JWKS with one RSA key) and one RS256 access token minted here, the same for
every request as a client reuses its token (aud the server's MCP URL, scope "mcp:tools", exp an
hour ahead).
1. Ours, one `echo --local` with MCP_AUTH_ISSUER, MCP_RESOURCE_URL, MCP_AUTH_SCOPES and
   RUNPOD_API_KEY: the JWT against `Authorization: Bearer <RUNPOD_API_KEY>` in BENCH_PAIRS pairs
   of BENCH_PAIR_SECONDS rounds side by side, the order alternating (the host's speed drifts more
   than the gap measured); the JWT's share of the API key's rate is the median pair's, rates and
   p99 the medians of their rounds. Goal: ≥ 90 %.
2. FastMCP with its `JWTVerifier` on the same JWKS (fastmcp_echo_server.py, JWT_* variables),
   BENCH_SECONDS, against ours with the JWT. Goals: ≥ 20× req/s, p99 ≤ 1/10.
Before measuring, each server must answer a tools/call with the token and refuse one without a
token or with a bad signature (401), so a wrong setup fails here instead of measuring errors.
Usage: benchmarks/run.sh mcp
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fleet import cpu_description  # noqa: E402
from bench_server import LUA as RUNSYNC_LUA  # noqa: E402
from bench_server import PAIR_SECONDS, PAIRS, PYTHON, RELEASE, ROOT, SECONDS, echo_command, free_port, quiet_env  # noqa: E402
from bench_server import wrk as wrk_runsync  # noqa: E402

LUA = os.path.join(ROOT, "benchmarks", "mcp_call.lua")
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"prompt": "hello", "n": 1}}}
FASTMCP_SERVER = os.path.join(ROOT, "benchmarks", "fastmcp_echo_server.py")
API_KEY = "bench-mcp-api-key"
SCOPES = "mcp:tools"


def call(port, authorization=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=json.dumps(CALL).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def expect_answer(port, authorization, what):
    answer = call(port, authorization)
    if answer.get("result", {}).get("structuredContent") != {"prompt": "hello", "n": 1}:
        raise RuntimeError(f"{what}: tools/call answered {answer}")


def expect_refusal(port, authorization, what, status=401):
    try:
        answer = call(port, authorization)
    except urllib.error.HTTPError as error:
        if error.code != status:
            raise RuntimeError(f"{what}: HTTP {error.code} instead of {status}: {error.read()[:300]!r}") from None
        return error.headers.get("WWW-Authenticate", "")
    raise RuntimeError(f"{what}: answered {answer} instead of HTTP {status}")


def serve(command, env, authorization=None, port=None):
    """command(port) started with env (or env(port)) on port (default: a free one), once it answers
    a tools/call (with authorization when given); returns the process and the port."""
    port = port or free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command(port), env=env(port) if callable(env) else env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    while True:
        try:
            expect_answer(port, authorization, command(port)[0])
            return proc, port
        except (OSError, ValueError) as error:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                proc.wait()
                log.seek(0)
                raise RuntimeError(f"{command(port)} never answered a tools/call ({error}); its stderr: "
                                   f"{log.read()[-2000:].decode(errors='replace')}") from None
            time.sleep(0.1)


def stop(proc):
    proc.terminate()
    proc.wait()


def wrk(port, authorization=None, seconds=None, warm_up=True):
    url = f"http://127.0.0.1:{port}/mcp"
    env = dict(os.environ, MCP_AUTHORIZATION=authorization or "")
    if warm_up:
        subprocess.run(["wrk", "-t1", "-c16", "-d2s", "-s", LUA, url], capture_output=True, env=env)
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds or SECONDS}s", "--latency", "-s", LUA, url],
                         capture_output=True, text=True, env=env).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = int(re.search(r"bad answers: (\d+)", out).group(1))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rate": rate, "p50": float(p50.group(1)) * scale[p50.group(2)], "p99": float(p99.group(1)) * scale[p99.group(2)],
            "errors": errors, "socket": socket_errors.group(1) if socket_errors else "none"}


def swift_call_and_runsync():
    """tools/call against /runsync on one `echo --local` (no key), in PAIRS pairs of adjacent
    PAIR_SECONDS rounds, the order alternating: what the MCP layer costs over the job path it runs
    on. The median pair's share is the figure (issue 31's goal: ≥ 80 %)."""
    proc, port = serve(echo_command, quiet_env(WORKER_CONCURRENCY="16"))
    try:
        runsync_url = f"http://127.0.0.1:{port}/runsync"
        wrk(port, seconds=2)
        wrk_runsync(runsync_url, seconds=2)
        calls, runsyncs, shares = [], [], []
        for index in range(PAIRS):
            order = ("call", "runsync") if index % 2 == 0 else ("runsync", "call")
            pair = {}
            for name in order:
                if name == "call":
                    pair[name] = wrk(port, seconds=PAIR_SECONDS, warm_up=False)["rate"]
                else:
                    rate, _, errors = wrk_runsync(runsync_url, seconds=PAIR_SECONDS, warm_up=False)
                    if errors:
                        raise RuntimeError(f"/runsync answered {errors} non-2xx responses")
                    pair[name] = rate
            calls.append(pair["call"])
            runsyncs.append(pair["runsync"])
            shares.append(pair["call"] / pair["runsync"])
        median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
        return median(calls), median(runsyncs), sorted(shares)
    finally:
        stop(proc)


def measure(command, env):
    proc, port = serve(command, env)
    try:
        return wrk(port)
    finally:
        stop(proc)


# MARK: Authorization server

class Issuer:
    """An OAuth authorization server as far as resource servers see one: RFC 8414 metadata at
    /.well-known/oauth-authorization-server (issuer: its own base URL) and /jwks with one RSA
    key (kid, alg RS256). The private key stays here and signs the tokens."""
    KID = "bench-key-1"

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update(kid=self.KID, alg="RS256", use="sig")
        self.served = Counter()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = issuer.documents.get(self.path)
                issuer.served[self.path if body else "other"] += 1
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        metadata = {"issuer": self.url, "jwks_uri": f"{self.url}/jwks",
                    "authorization_endpoint": f"{self.url}/authorize", "token_endpoint": f"{self.url}/token",
                    "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"],
                    "code_challenge_methods_supported": ["S256"], "scopes_supported": [SCOPES]}
        self.documents = {"/.well-known/oauth-authorization-server": json.dumps(metadata).encode(),
                          "/jwks": json.dumps({"keys": [public]}).encode()}
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, audience, key=None):
        now = int(time.time())
        claims = {"iss": self.url, "sub": "bench-client", "aud": audience, "scope": SCOPES,
                  "iat": now, "exp": now + 3600, "client_id": "bench-client"}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.KID})

    def forged_token(self, audience):
        """Same claims and kid, signed by another key: must be refused."""
        return self.token(audience, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def check_refusals(port, issuer, audience, what):
    challenge = expect_refusal(port, None, f"{what} without a token")
    expect_refusal(port, f"Bearer {issuer.forged_token(audience)}", f"{what} with a token signed by another key")
    return challenge


def auth_env(issuer):
    return lambda port: quiet_env(WORKER_CONCURRENCY="16", RUNPOD_API_KEY=API_KEY, MCP_AUTH_ISSUER=issuer.url,
                                  MCP_RESOURCE_URL=f"http://127.0.0.1:{port}/mcp", MCP_AUTH_SCOPES=SCOPES)


def swift_jwt_and_api_key(issuer):
    """The JWT against the API key on one `echo --local`, in PAIRS pairs of adjacent rounds."""
    # The port is chosen first: MCP_RESOURCE_URL and the token's aud name it. The readiness check
    # already presents the token: the server must answer with it.
    port = free_port()
    jwt_header = f"Bearer {issuer.token(f'http://127.0.0.1:{port}/mcp')}"
    proc, port = serve(echo_command, auth_env(issuer), jwt_header, port)
    try:
        key_header = f"Bearer {API_KEY}"
        expect_answer(port, key_header, "swift echo --local with the API key")
        challenge = check_refusals(port, issuer, f"http://127.0.0.1:{port}/mcp", "swift echo --local")
        if "resource_metadata=" not in challenge:
            raise RuntimeError(f"swift echo --local: 401 without resource_metadata in WWW-Authenticate: {challenge!r}")
        expect_refusal(port, "Bearer not-the-key", "swift echo --local with a wrong API key")
        wrk(port, jwt_header, seconds=2)
        wrk(port, key_header, seconds=2)
        jwt_runs, key_runs, shares = [], [], []
        for index in range(PAIRS):
            if index % 2 == 0:
                k = wrk(port, key_header, seconds=PAIR_SECONDS, warm_up=False)
                j = wrk(port, jwt_header, seconds=PAIR_SECONDS, warm_up=False)
            else:
                j = wrk(port, jwt_header, seconds=PAIR_SECONDS, warm_up=False)
                k = wrk(port, key_header, seconds=PAIR_SECONDS, warm_up=False)
            jwt_runs.append(j)
            key_runs.append(k)
            shares.append(j["rate"] / k["rate"])
        return summary(jwt_runs), summary(key_runs), sorted(shares)
    finally:
        stop(proc)


def summary(runs):
    median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
    return {"rate": median([r["rate"] for r in runs]), "p50": median([r["p50"] for r in runs]),
            "p99": median([r["p99"] for r in runs]), "errors": sum(r["errors"] for r in runs),
            "socket": "; ".join(sorted({r["socket"] for r in runs}))}


def fastmcp_jwt(issuer):
    port = free_port()
    audience = f"http://127.0.0.1:{port}/mcp"
    env = quiet_env(FASTMCP_LOG_LEVEL="WARNING", JWT_JWKS_URI=f"{issuer.url}/jwks", JWT_ISSUER=issuer.url,
                    JWT_AUDIENCE=audience, JWT_REQUIRED_SCOPES=SCOPES, JWT_ALGORITHM="RS256")
    header = f"Bearer {issuer.token(audience)}"
    proc, port = serve(lambda p: [PYTHON, FASTMCP_SERVER, str(p)], env, header, port)
    try:
        check_refusals(port, issuer, audience, "FastMCP")
        return wrk(port, header)
    finally:
        stop(proc)


def line(name, r):
    return (f"  {name:32s} {r['rate']:10,.0f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  "
            f"bad answers {r['errors']}  socket errors {r['socket']}")


def main():
    print(f"MCP tools/call benchmark (wrk -t1 -c16, {SECONDS} s; same machine, one run)")
    print(f"CPU: {cpu_description()}", flush=True)
    results = {
        "swift echo --local": measure(echo_command, quiet_env(WORKER_CONCURRENCY="16")),
        "FastMCP 4.2.3 (stateless, JSON)": measure(
            lambda port: [PYTHON, FASTMCP_SERVER, str(port)],
            quiet_env(FASTMCP_LOG_LEVEL="WARNING")),
    }
    for name, r in results.items():
        print(line(name, r), flush=True)
    ours, peer = results["swift echo --local"], results["FastMCP 4.2.3 (stateless, JSON)"]
    call_rate, runsync_rate, call_shares = swift_call_and_runsync()
    call_share = call_shares[len(call_shares) // 2]
    print(f"  swift tools/call vs /runsync, same server, {PAIRS} pairs of {PAIR_SECONDS} s: {call_rate:,.0f} vs "
          f"{runsync_rate:,.0f} req/s (median rounds); median pair {call_share:.0%}, pairs "
          f"{', '.join(f'{x:.0%}' for x in call_shares)} (goal ≥ 80 %: {'met' if call_share >= 0.8 else 'missed'})", flush=True)

    issuer = Issuer()
    try:
        print(f"with authorization: issuer {issuer.url} (RFC 8414 metadata, JWKS of one RSA key), RS256 token, "
              f"scope {SCOPES!r}, one token reused; swift JWT vs API key in {PAIRS} pairs of {PAIR_SECONDS} s rounds, "
              f"FastMCP {SECONDS} s", flush=True)
        swift_jwt, swift_key, shares = swift_jwt_and_api_key(issuer)
        print(line("swift, JWT (median round)", swift_jwt), flush=True)
        print(line("swift, API key (median round)", swift_key), flush=True)
        peer_jwt = fastmcp_jwt(issuer)
        print(line("FastMCP 4.2.3, JWTVerifier", peer_jwt), flush=True)
        print(f"  issuer served: {dict(sorted(issuer.served.items()))}", flush=True)
    finally:
        issuer.close()

    print()
    print("| tools/call (echo), wrk -t1 -c16 | swift | FastMCP 4.2.3 | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| requests/s | {ours['rate']:,.0f} | {peer['rate']:,.0f} | {ours['rate'] / peer['rate']:.1f}x |")
    print(f"| p50 | {ours['p50']:.2f} ms | {peer['p50']:.2f} ms | {ours['p50'] / peer['p50']:.3f}x |")
    print(f"| p99 | {ours['p99']:.2f} ms | {peer['p99']:.2f} ms | {ours['p99'] / peer['p99']:.3f}x |")
    print(f"| bad answers | {ours['errors']} | {peer['errors']} | |")
    print()
    share = shares[len(shares) // 2]
    print("| tools/call (echo) with authorization, wrk -t1 -c16 | swift, JWT | swift, API key | FastMCP 4.2.3, JWT | "
          "JWT / API key (goal ≥ 90 %) | swift / FastMCP (goal ≥ 20×, p99 ≤ 1/10) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| requests/s | {swift_jwt['rate']:,.0f} | {swift_key['rate']:,.0f} | {peer_jwt['rate']:,.0f} | "
          f"{share:.0%} (median pair; pairs {shares[0]:.0%}–{shares[-1]:.0%}) | {swift_jwt['rate'] / peer_jwt['rate']:.1f}x |")
    print(f"| p50 | {swift_jwt['p50']:.2f} ms | {swift_key['p50']:.2f} ms | {peer_jwt['p50']:.2f} ms | | "
          f"1/{peer_jwt['p50'] / swift_jwt['p50']:.0f} |")
    print(f"| p99 | {swift_jwt['p99']:.2f} ms | {swift_key['p99']:.2f} ms | {peer_jwt['p99']:.2f} ms | | "
          f"1/{peer_jwt['p99'] / swift_jwt['p99']:.0f} |")
    print(f"| bad answers | {swift_jwt['errors']} | {swift_key['errors']} | {peer_jwt['errors']} | | |")
    met = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    print(f"goals: JWT ≥ 90 % of API key: {met(share >= 0.9)}; ≥ 20× FastMCP req/s: "
          f"{met(swift_jwt['rate'] >= 20 * peer_jwt['rate'])}; p99 ≤ 1/10 of FastMCP's: "
          f"{met(swift_jwt['p99'] * 10 <= peer_jwt['p99'])}")


if __name__ == "__main__":
    main()
