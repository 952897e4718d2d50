"""MCP authorization (OAuth 2.1, the worker as a protected resource) against `echo --local`, with a fake
authorization server (fake_auth_server.py): the official `mcp` client's OAuth support unmodified
(discovery, registration, authorization with PKCE, token, scope step-up) in both protocol eras, the
metadata documents, the challenges, and raw tokens the worker must refuse or accept."""
import base64
import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.shared.exceptions import MCPError

from fake_auth_server import INTROSPECTION_CLIENT, FakeAuthServer, b64url_json, closed_port, follow_authorization, new_key
from workers import Worker

ECHO = os.environ.get("ECHO_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "echo"))
KEY = "mcp-auth-test-key"
MODES = ["legacy", "auto"]
REQUIRED = "mcp:tools"
TOOL_SCOPE = "echo:run"
ECHO_ARGS = {"name": "echo", "arguments": {"a": 1}}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**settings):
    """This process's environment without any RunPod or MCP setting, plus `settings` (None drops one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "MCP_", "WORKER_"))}
    env.update({k: v for k, v in settings.items() if v is not None})
    return env


class AuthWorker(Worker):
    """`echo --local` on a port chosen here, so that MCP_RESOURCE_URL can name it."""

    def __init__(self, issuer, api_key=None, **settings):
        port = free_port()
        self.resource = f"http://127.0.0.1:{port}/mcp"
        self.metadata_url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
        settings = {"MCP_AUTH_ISSUER": issuer, "MCP_RESOURCE_URL": self.resource, "MCP_AUTH_SCOPES": REQUIRED,
                    "MCP_TOOL_SCOPES": f"echo={TOOL_SCOPE}", "RUNPOD_API_KEY": api_key, **settings}
        self.log = []
        self.proc = subprocess.Popen([ECHO, "--local", "--port", str(port)], env=clean_env(**settings),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert self._port(time.time() + 30) == port
            self.base = f"http://127.0.0.1:{port}"
            self._wait_ready(time.time() + 30)
        except BaseException:
            self.proc.kill()
            raise


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def challenge(self):
        """The WWW-Authenticate header's scheme and parameters."""
        header = self.headers.get("WWW-Authenticate") or ""
        scheme = header.split(" ", 1)[0]
        return scheme, dict(re.findall(r'(\w+)="([^"]*)"', header))

    def __repr__(self):
        return f"<{self.status} {dict(self.headers)} {self.body[:300]!r}>"


def fetch(url, data=None, headers=None, method=None, timeout=20):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def mcp(worker, token=None, method="ping", params=None, headers=None, path="/mcp", query="", timeout=20):
    """One JSON-RPC request POSTed to the worker's MCP endpoint, `token` as the bearer."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params else {})}
    all_headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    return fetch(worker.base + path + query, json.dumps(body).encode(), all_headers, timeout=timeout)


def assert_refused(reply, status, error=None, worker=None):
    """A refusal on /mcp: the status, a Bearer challenge (with `error` if given) and a JSON-RPC error body."""
    assert reply.status == status, reply
    scheme, params = reply.challenge()
    assert scheme == "Bearer", reply
    if error is not None:
        assert params.get("error") == error, reply
    if worker is not None and status in (401, 403):
        assert params.get("resource_metadata") == worker.metadata_url, reply
    body = reply.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32001, body
    assert body["error"]["message"], body
    return params


def assert_ok(reply):
    assert reply.status == 200, reply
    body = reply.json()
    assert "error" not in body, body
    return body


def wait_until_accepted(worker, token, seconds=8):
    deadline = time.monotonic() + seconds
    while (reply := mcp(worker, token)).status != 200:
        assert reply.status == 503 and time.monotonic() < deadline, reply
        time.sleep(0.3)
    assert_ok(reply)


def scopes(value):
    return set(value.replace(",", " ").split())


@pytest.fixture(scope="module")
def fake():
    server = FakeAuthServer(algs=("RS256", "ES256", "PS256", "EdDSA")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(fake):
    started = AuthWorker(fake.base, api_key=KEY, MCP_AUTH_JWKS_REFETCH_SECONDS="1",
                         MCP_AUTH_CLIENT_ID=INTROSPECTION_CLIENT[0], MCP_AUTH_CLIENT_SECRET=INTROSPECTION_CLIENT[1])
    yield started
    started.stop()


# ---- the official client ------------------------------------------------------------------------

class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Browser:
    """An auto-approving user: follows the authorization URL (not its redirect) and hands the
    redirect's code and state to the SDK's callback."""

    def __init__(self):
        self.urls = []
        self.answer = None

    async def redirect(self, url):
        self.urls.append(url)
        self.answer = await anyio.to_thread.run_sync(follow_authorization, url)

    async def callback(self):
        answer, self.answer = self.answer, None
        assert answer and "code" in answer, answer
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))


@pytest.mark.parametrize("mode", MODES)
def test_official_client_discovers_registers_authorizes_and_steps_up(fake, worker, mode):
    storage, browser = MemoryStorage(), Browser()
    provider = OAuthClientProvider(
        server_url=worker.resource,
        client_metadata=OAuthClientMetadata(redirect_uris=["http://127.0.0.1:9/callback"], client_name=f"mcp-auth-{mode}",
                                            grant_types=["authorization_code", "refresh_token"], response_types=["code"]),
        storage=storage, redirect_handler=browser.redirect, callback_handler=browser.callback)
    registrations, authorizations, issued = len(fake.registrations), len(fake.authorizations), len(fake.issued)

    async def body():
        client = Client(streamable_http_client(worker.resource, http_client=httpx2.AsyncClient(auth=provider, timeout=30)),
                        mode=mode)
        async with client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["echo"]
            result = await client.call_tool("echo", {"a": 1, "nested": {"b": [1, 2]}})
            assert not result.is_error, result
            assert result.structured_content == {"a": 1, "nested": {"b": [1, 2]}}
            # A second call goes through on the token already held.
            assert (await client.call_tool("echo", {"again": True})).structured_content == {"again": True}
            if mode == "auto":
                # The client found the 2026-07-28 era through server/discover.
                assert client.session.discover_result is not None
    anyio.run(body)

    # Dynamic registration once; the first authorization asked for what the 401 challenge named,
    # for this resource (RFC 8707); the 403 on tools/call stepped the scope up to the tool's.
    assert len(fake.registrations) == registrations + 1
    mine = fake.authorizations[authorizations:]
    assert len(mine) == 2, mine
    assert all(a["resource"] == worker.resource and a["code_challenge_method"] == "S256" for a in mine), mine
    assert scopes(mine[0]["scope"]) == {REQUIRED}, mine
    assert {REQUIRED, TOOL_SCOPE} <= scopes(mine[1]["scope"]), mine
    tokens = fake.issued[issued:]
    assert [t["aud"] for t in tokens] == [worker.resource] * 2
    assert {REQUIRED, TOOL_SCOPE} <= scopes(storage.tokens.scope)
    assert storage.client_info.client_id == fake.registrations[-1]


@pytest.mark.parametrize("mode", MODES)
def test_official_client_with_a_token_or_the_api_key_as_a_header(fake, worker, mode):
    token = fake.mint(worker.resource, scope=f"{REQUIRED} {TOOL_SCOPE}")

    async def body(bearer):
        client = Client(streamable_http_client(worker.resource, http_client=httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {bearer}"})), mode=mode)
        async with client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["echo"]
            assert (await client.call_tool("echo", {"k": bearer[:4]})).structured_content == {"k": bearer[:4]}

    anyio.run(body, token)
    anyio.run(body, KEY)

    async def lacking_tool_scope():
        client = Client(streamable_http_client(worker.resource, http_client=httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {fake.mint(worker.resource, scope=REQUIRED)}"})), mode=mode)
        async with client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["echo"]
            # The 403's JSON-RPC error reaches the caller, naming the missing scope.
            with pytest.raises(MCPError) as refused:
                await client.call_tool("echo", {"x": 1})
            assert TOOL_SCOPE in str(refused.value), refused.value
    anyio.run(lacking_tool_scope)


# ---- documents and challenges --------------------------------------------------------------------

def test_protected_resource_metadata_everywhere_without_the_api_key(fake, worker):
    expected_paths = ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
                      "/.well-known/oauth-protected-resource/v2/abc123/mcp", "/v2/abc123/.well-known/oauth-protected-resource",
                      "/v2/abc123/.well-known/oauth-protected-resource/mcp"]
    for path in expected_paths:
        reply = fetch(worker.base + path)
        assert reply.status == 200, (path, reply)
        assert reply.headers["Content-Type"].startswith("application/json"), (path, reply)
        document = reply.json()
        assert document["resource"] == worker.resource, document
        assert document["authorization_servers"] == [fake.base], document
        assert set(document["scopes_supported"]) == {REQUIRED, TOOL_SCOPE}, document
        assert document["bearer_methods_supported"] == ["header"], document
        assert isinstance(document.get("resource_name"), str) and document["resource_name"], document
    # The URL the challenges name serves it too.
    assert fetch(worker.metadata_url).json()["resource"] == worker.resource


def test_challenge_without_a_token(worker):
    for path in ("/mcp", "/v2/abc123/mcp"):
        reply = mcp(worker, path=path)
        params = assert_refused(reply, 401)
        assert params["resource_metadata"] == worker.metadata_url, reply
        assert scopes(params["scope"]) == {REQUIRED}, reply
        assert "error" not in params, reply  # RFC 6750 §3.1: no error code when no credentials were sent
    # A scheme other than Bearer is no credential either.
    assert_refused(mcp(worker, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)


def test_valid_tokens_of_every_key_type_and_claim_form(fake, worker):
    for alg in ("RS256", "ES256", "PS256", "EdDSA"):
        assert_ok(mcp(worker, fake.mint(worker.resource, key=alg)))
    # aud as an array, aud with a trailing slash, scopes in "scp" (array and string), a comma list.
    assert_ok(mcp(worker, fake.mint(["https://other.example/api", worker.resource])))
    assert_ok(mcp(worker, fake.mint(worker.resource + "/")))
    assert_ok(mcp(worker, fake.mint(worker.resource, scope=None, scp=[REQUIRED, TOOL_SCOPE])))
    assert_ok(mcp(worker, fake.mint(worker.resource, scope=None, scp=REQUIRED)))
    # Within the default 60 s leeway: just expired, not quite valid yet.
    now = int(time.time())
    assert_ok(mcp(worker, fake.mint(worker.resource, exp=now - 20, iat=now - 600, nbf=now - 600)))
    assert_ok(mcp(worker, fake.mint(worker.resource, nbf=now + 20, iat=now)))
    # The /v2/<id>/mcp form of the endpoint takes the same token.
    assert_ok(mcp(worker, fake.mint(worker.resource), path="/v2/abc123/mcp"))


def test_a_verified_token_works_twice_and_for_tool_calls(fake, worker):
    token = fake.mint(worker.resource, scope=f"{REQUIRED} {TOOL_SCOPE}")
    for n in range(2):
        result = assert_ok(mcp(worker, token, "tools/call", {"name": "echo", "arguments": {"n": n}}))["result"]
        assert result["structuredContent"] == {"n": n}, result
    assert assert_ok(mcp(worker, token, "tools/list"))["result"]["tools"][0]["name"] == "echo"


def _rejected_tokens(fake, resource):
    now = int(time.time())
    rsa_jwk = fake.key("RS256").jwk()
    tampered = fake.mint(resource, scope=REQUIRED).split(".")
    payload = json.loads(base64.urlsafe_b64decode(tampered[1] + "=="))
    payload["scope"] = f"{REQUIRED} {TOOL_SCOPE} admin"
    tampered = ".".join([tampered[0], b64url_json(payload), tampered[2]])
    return {
        "expired": fake.mint(resource, exp=now - 600, iat=now - 1200, nbf=now - 1200),
        "not yet valid": fake.mint(resource, nbf=now + 600),
        "wrong audience": fake.mint("http://127.0.0.1:1/mcp"),
        "wrong audience array": fake.mint(["http://127.0.0.1:1/mcp", "https://other.example/mcp"]),
        "audience prefix": fake.mint(resource + "-admin"),
        "no audience": fake.mint(None),
        "wrong issuer": fake.mint(resource, iss="http://127.0.0.1:1"),
        "bad signature": fake.foreign_signed(fake.claims(resource)),
        "tampered payload": tampered,
        "unknown kid": fake.sign(fake.claims(resource), key=new_key("RS256")),
        "no kid, foreign key": fake.sign(fake.claims(resource), key=new_key("ES256"), kid=False),
        "alg none": fake.alg_none(fake.claims(resource)),
        "HS256 keyed with the RSA public key": fake.hs256_with_public_key(fake.claims(resource)),
        "jku header": fake.mint(resource, headers={"jku": f"{fake.base}/jwks"}),
        "x5u header": fake.mint(resource, headers={"x5u": f"{fake.base}/cert.pem"}),
        "jwk header": fake.mint(resource, headers={"jwk": rsa_jwk}),
        "crit header": fake.mint(resource, headers={"crit": ["exp"]}),
        "over 8 KiB": fake.mint(resource, padding="x" * 9000),
        "not a JWT": "definitely-not-a-token",
        "three garbage segments": "abc.def.ghi",
    }


def test_bad_tokens_are_refused(fake, worker):
    # A good token first, so that the worker holds the keys and each refusal is the token's fault.
    assert_ok(mcp(worker, fake.mint(worker.resource)))
    failures = []
    for name, token in _rejected_tokens(fake, worker.resource).items():
        reply = mcp(worker, token)
        try:
            params = assert_refused(reply, 401, "invalid_token", worker)
            assert params.get("error_description"), reply
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)
    # Still serving good tokens afterwards.
    assert_ok(mcp(worker, fake.mint(worker.resource)))


def test_missing_scopes_are_403_naming_them(fake, worker):
    # Lacking MCP_AUTH_SCOPES: refused on every request.
    params = assert_refused(mcp(worker, fake.mint(worker.resource, scope=TOOL_SCOPE)), 403, "insufficient_scope", worker)
    assert REQUIRED in scopes(params["scope"]), params
    params = assert_refused(mcp(worker, fake.mint(worker.resource, scope="")), 403, "insufficient_scope", worker)
    assert REQUIRED in scopes(params["scope"]), params
    # A scope that merely contains the name is not the scope.
    assert_refused(mcp(worker, fake.mint(worker.resource, scope="mcp:tools:read")), 403, "insufficient_scope", worker)
    # Lacking the tool's scope: listing is fine, calling the tool is not.
    only_required = fake.mint(worker.resource, scope=REQUIRED)
    assert_ok(mcp(worker, only_required, "tools/list"))
    params = assert_refused(mcp(worker, only_required, "tools/call", ECHO_ARGS), 403, "insufficient_scope", worker)
    assert TOOL_SCOPE in scopes(params["scope"]), params
    assert params.get("error_description"), params
    # With both, the call runs.
    both = fake.mint(worker.resource, scope=f"{TOOL_SCOPE} {REQUIRED}")
    assert assert_ok(mcp(worker, both, "tools/call", ECHO_ARGS))["result"]["structuredContent"] == {"a": 1}


def test_a_one_megabyte_authorization_header_is_refused_and_the_worker_keeps_serving(fake, worker):
    try:
        reply = mcp(worker, "A" * (1 << 20))
        assert reply.status != 200 and 400 <= reply.status < 500, reply
    except (ConnectionError, urllib.error.URLError, http.client.HTTPException):
        pass  # dropping the connection is a refusal too
    assert worker.proc.poll() is None
    assert_ok(mcp(worker, fake.mint(worker.resource)))


def test_a_token_in_the_query_string_is_400(fake, worker):
    token = fake.mint(worker.resource)
    reply = mcp(worker, query=f"?access_token={token}")
    scheme, params = reply.challenge()
    assert reply.status == 400 and scheme == "Bearer" and params.get("error") == "invalid_request", reply
    assert reply.json()["error"]["code"] == -32001, reply
    # Even beside a good header.
    assert mcp(worker, token, query=f"?access_token={token}").status == 400


def test_the_api_key_beside_oauth(fake, worker):
    # The machine client's key has every scope.
    assert assert_ok(mcp(worker, KEY, "tools/call", ECHO_ARGS))["result"]["structuredContent"] == {"a": 1}
    assert_refused(mcp(worker, KEY + "x"), 401, "invalid_token", worker)
    # Other routes keep requiring the key: an OAuth token is no key there.
    token = fake.mint(worker.resource, scope=f"{REQUIRED} {TOOL_SCOPE}")
    assert fetch(worker.base + "/health", headers={"Authorization": f"Bearer {token}"}).status == 401
    assert fetch(worker.base + "/health", headers={"Authorization": f"Bearer {KEY}"}).status == 200


def test_opaque_tokens_through_introspection(fake, worker):
    before = len(fake.introspections)
    token = fake.opaque(worker.resource, scope=f"{REQUIRED} {TOOL_SCOPE}")
    assert assert_ok(mcp(worker, token, "tools/call", ECHO_ARGS))["result"]["structuredContent"] == {"a": 1}
    assert token in fake.introspections[before:]
    # Inactive, for another resource, expired, lacking a scope.
    assert_refused(mcp(worker, fake.opaque(worker.resource, active=False)), 401, "invalid_token", worker)
    assert_refused(mcp(worker, fake.opaque("http://127.0.0.1:1/mcp")), 401, "invalid_token", worker)
    now = int(time.time())
    assert_refused(mcp(worker, fake.opaque(worker.resource, exp=now - 600)), 401, "invalid_token", worker)
    params = assert_refused(mcp(worker, fake.opaque(worker.resource, scope=TOOL_SCOPE)), 403, "insufficient_scope", worker)
    assert REQUIRED in scopes(params["scope"]), params
    assert_refused(mcp(worker, fake.opaque(worker.resource, scope=REQUIRED), "tools/call", ECHO_ARGS),
                   403, "insufficient_scope", worker)


# ---- keys: rotation, unknown kids, an authorization server that fails -------------------------------

def test_unknown_kid_before_and_after_rotation():
    with FakeAuthServer() as fake:
        worker = AuthWorker(fake.base, MCP_AUTH_JWKS_REFETCH_SECONDS="1")
        try:
            assert_ok(mcp(worker, fake.mint(worker.resource)))
            upcoming = new_key("ES256")
            early = fake.sign(fake.claims(worker.resource), key=upcoming)
            hits = fake.jwks_hits
            # Unknown kid: refused, and a burst of them refetches the key set at most once.
            for _ in range(5):
                assert_refused(mcp(worker, early), 401, "invalid_token", worker)
            assert fake.jwks_hits <= hits + 1, (hits, fake.jwks_hits)
            # The authorization server rotates to that key: once the refetch interval (1 s) has
            # passed, tokens signed with it are accepted, the one refused before too.
            fake.rotate(key=upcoming)
            time.sleep(1.2)
            assert_ok(mcp(worker, fake.mint(worker.resource)))
            assert fake.jwks_hits > hits
            assert_ok(mcp(worker, early))
            # A rotation that drops every old key: the new one is found the same way.
            newest = fake.rotate("RS256", drop_old=True)
            time.sleep(1.2)
            assert_ok(mcp(worker, fake.mint(worker.resource, key=newest)))
        finally:
            worker.stop()


def test_unknown_kid_refetches_at_most_once_per_interval():
    with FakeAuthServer() as fake:
        worker = AuthWorker(fake.base)  # the default interval, 30 s
        try:
            assert_ok(mcp(worker, fake.mint(worker.resource)))
            first = new_key("RS256")
            assert_refused(mcp(worker, fake.sign(fake.claims(worker.resource), key=first)), 401, "invalid_token", worker)
            hits = fake.jwks_hits
            fake.rotate(key=first)
            second = new_key("RS256")
            for key in (first, second, first):
                assert_refused(mcp(worker, fake.sign(fake.claims(worker.resource), key=key)), 401, "invalid_token", worker)
            assert fake.jwks_hits == hits, "an unknown kid refetched the key set within the interval"
        finally:
            worker.stop()


@pytest.mark.parametrize("failure", ["jwks refused", "jwks 500", "jwks slow", "jwks garbage", "metadata refused"])
def test_an_unusable_key_set_is_503_while_the_api_key_is_served(failure):
    with FakeAuthServer() as fake:
        if failure == "metadata refused":
            issuer = f"http://127.0.0.1:{closed_port()}"
        else:
            issuer = fake.base
            fake.jwks_mode = failure.split()[1]
        started = time.monotonic()
        worker = AuthWorker(issuer, api_key=KEY, MCP_AUTH_JWKS_REFETCH_SECONDS="1")
        try:
            token = fake.sign({**fake.claims(worker.resource), "iss": issuer})
            replies = {}
            caller = threading.Thread(target=lambda: replies.setdefault("oauth", mcp(worker, token, timeout=30)))
            caller.start()
            time.sleep(0.3)
            # Another client, with the API key, is served meanwhile (and quickly, even while the
            # key set hangs).
            asked = time.monotonic()
            assert assert_ok(mcp(worker, KEY, "tools/call", ECHO_ARGS))["result"]["structuredContent"] == {"a": 1}
            assert time.monotonic() - asked < 2
            if failure == "jwks slow":
                assert caller.is_alive(), "the token's request should still be waiting for the slow key set"
            caller.join(30)
            reply = replies["oauth"]
            assert reply.status == 503, (reply, "".join(worker.log))
            assert reply.headers.get("Retry-After", "").strip().isdigit(), reply
            assert reply.json()["error"]["message"], reply
            # Not hanging past the key set's 5 s timeout (the fake sleeps 7 s).
            assert time.monotonic() - asked < 6.5
            if failure != "metadata refused" and failure != "jwks refused":
                # The key set comes back: the worker recovers.
                fake.jwks_mode = "ok"
                wait_until_accepted(worker, token)
            assert worker.proc.poll() is None
        finally:
            worker.stop()
        assert time.monotonic() - started < 30


def test_an_empty_key_set_is_503_until_keys_are_published():
    with FakeAuthServer() as fake:
        fake.jwks_mode = "empty"
        worker = AuthWorker(fake.base, api_key=KEY, MCP_AUTH_JWKS_REFETCH_SECONDS="1")
        try:
            token = fake.mint(worker.resource)
            reply = mcp(worker, token)
            assert reply.status == 503 and reply.headers.get("Retry-After", "").strip().isdigit(), reply
            assert "empty" in reply.json()["error"]["message"], reply
            assert_ok(mcp(worker, KEY))
            # Keys published: the worker recovers (it retries a failed fetch after a short pause).
            fake.jwks_mode = "ok"
            wait_until_accepted(worker, token)
        finally:
            worker.stop()


def test_a_cached_token_stops_working_when_it_expires(fake):
    worker = AuthWorker(fake.base, MCP_AUTH_LEEWAY_SECONDS="0")
    try:
        token = fake.mint(worker.resource, lifetime=2)
        assert_ok(mcp(worker, token))
        assert_ok(mcp(worker, token))  # from the cache
        time.sleep(3)
        params = assert_refused(mcp(worker, token), 401, "invalid_token", worker)
        assert "expired" in params.get("error_description", ""), params
        # With no leeway, a token valid a few seconds from now is not valid yet.
        assert_refused(mcp(worker, fake.mint(worker.resource, nbf=int(time.time()) + 20)), 401, "invalid_token", worker)
    finally:
        worker.stop()


def test_issuer_with_a_path_is_discovered_in_the_specified_order():
    # Only the last candidate serves the metadata: the worker must try the two before it, in order.
    with FakeAuthServer(issuer_path="/tenants/t1", metadata_paths=["/tenants/t1/.well-known/openid-configuration"]) as fake:
        worker = AuthWorker(fake.base)
        try:
            assert_ok(mcp(worker, fake.mint(worker.resource)))
            tried = [path for method, path in fake.requests if ".well-known" in path]
            assert tried[:3] == ["/.well-known/oauth-authorization-server/tenants/t1",
                                 "/.well-known/openid-configuration/tenants/t1",
                                 "/tenants/t1/.well-known/openid-configuration"], tried
            assert fetch(worker.metadata_url).json()["authorization_servers"] == [fake.base]
        finally:
            worker.stop()


def test_metadata_whose_issuer_differs_is_not_trusted():
    with FakeAuthServer() as fake:
        real = fake.metadata
        fake.metadata = lambda: {**real(), "issuer": "http://127.0.0.1:1"}
        worker = AuthWorker(fake.base, api_key=KEY)
        try:
            reply = mcp(worker, fake.mint(worker.resource))
            assert reply.status in (401, 503), reply
            assert_ok(mcp(worker, KEY))
        finally:
            worker.stop()


# ---- settings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings,named", [
    ({"MCP_RESOURCE_URL": "http://127.0.0.1:8123/mcp"}, ("MCP_AUTH_ISSUER", "MCP_RESOURCE_URL")),
    ({"MCP_AUTH_SCOPES": "mcp:tools"}, ("MCP_AUTH_ISSUER", "MCP_AUTH_SCOPES")),
    ({"MCP_AUTH_ISSUER": "http://127.0.0.1:1"}, ("MCP_RESOURCE_URL",)),
    ({"MCP_AUTH_ISSUER": "http://auth.example.com", "MCP_RESOURCE_URL": "http://127.0.0.1:8123/mcp"}, ("MCP_AUTH_ISSUER",)),
    ({"MCP_AUTH_ISSUER": "http://127.0.0.1:1", "MCP_RESOURCE_URL": "http://127.0.0.1:8123/mcp",
      "MCP_TOOL_SCOPES": "no_such_tool=x"}, ("MCP_TOOL_SCOPES",)),
    ({"MCP_AUTH_ISSUER": "http://127.0.0.1:1", "MCP_RESOURCE_URL": "http://127.0.0.1:8123/mcp",
      "MCP_AUTH_LEEWAY_SECONDS": "301"}, ("MCP_AUTH_LEEWAY_SECONDS",)),
    ({"MCP_AUTH_ISSUER": "http://127.0.0.1:1", "MCP_RESOURCE_URL": "http://127.0.0.1:8123/mcp",
      "MCP_AUTH_JWKS_REFETCH_SECONDS": "0"}, ("MCP_AUTH_JWKS_REFETCH_SECONDS",)),
], ids=["resource without issuer", "scopes without issuer", "issuer without resource", "http issuer not loopback",
        "unknown tool", "leeway too large", "refetch interval zero"])
def test_bad_settings_stop_the_worker_naming_the_variable(settings, named):
    process = subprocess.Popen([ECHO, "--local", "--port", "0"], env=clean_env(**settings),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the worker kept running with {settings}")
    assert process.returncode != 0, stderr
    assert any(name in stderr for name in named), stderr


def test_stdio_is_unaffected(fake):
    env = clean_env(MCP_AUTH_ISSUER=fake.base, MCP_RESOURCE_URL="http://127.0.0.1:8123/mcp", MCP_AUTH_SCOPES=REQUIRED,
                    MCP_TOOL_SCOPES=f"echo={TOOL_SCOPE}")

    async def body():
        async with Client(StdioServerParameters(command=ECHO, args=["--mcp"], env=env), mode="legacy") as client:
            assert (await client.call_tool("echo", {"stdio": 1})).structured_content == {"stdio": 1}
    anyio.run(body)
