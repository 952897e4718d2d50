"""A fake OAuth 2.1 authorization server for the MCP authorization tests: auto-approving, in a thread
of this process (stdlib `http.server`), keys and signatures by PyJWT and cryptography.

It serves RFC 8414 and OpenID metadata, a JWKS (RS256 and ES256 keys by default, each with `kid` and
`alg`), `/authorize` (authorization code with PKCE S256 only, RFC 8707 `resource`, `scope`), `/token`
(authorization_code and refresh_token; access tokens are JWTs whose `aud` is the `resource`),
`/register` (RFC 7591), `/introspect` (RFC 7662, HTTP Basic with `INTROSPECTION_CLIENT`). Its JWKS
route can be made to fail (`jwks_mode`), its keys rotated (`rotate`), and it mints any token the
raw tests need: any claims, header or key, `alg: none`, HS256 keyed with the RSA public key PEM,
opaque tokens known only to introspection.

    server = FakeAuthServer().start()
    server.base  # the issuer, e.g. http://127.0.0.1:40123
    token = server.mint(aud="http://127.0.0.1:8123/mcp", scope="mcp:tools")
    server.stop()
"""
import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

# The client the resource server authenticates as at /introspect (MCP_AUTH_CLIENT_ID / _SECRET).
INTROSPECTION_CLIENT = ("mcp-resource-server", "introspection-secret")
SCOPES_SUPPORTED = ["mcp:tools", "echo:run", "openid", "profile"]
# How long the JWKS route sleeps in the "slow" mode: longer than the resource server's 5 s timeout.
SLOW_SECONDS = 7.0
JWKS_MODES = ("ok", "500", "slow", "garbage", "empty", "refused")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value):
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def s256(verifier):
    return b64url(hashlib.sha256(verifier.encode()).digest())


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: object

    @property
    def public(self):
        return self.private.public_key()

    def jwk(self):
        if self.alg.startswith(("RS", "PS")):
            key = RSAAlgorithm.to_jwk(self.public, as_dict=True)
        elif self.alg.startswith("ES"):
            key = ECAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            key = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        return {**key, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self):
        return self.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_key(alg, kid=None):
    if alg.startswith(("RS", "PS")):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "ES384":
        private = ec.generate_private_key(ec.SECP384R1())
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"no key type for {alg}")
    return SigningKey(kid or f"{alg.lower()}-{secrets.token_hex(4)}", alg, private)


@dataclass
class Client:
    client_id: str
    client_secret: str | None
    redirect_uris: list
    token_endpoint_auth_method: str
    metadata: dict = field(default_factory=dict)


class FakeAuthServer:
    """The authorization server. Every attribute below may be read or changed by a test while it runs."""

    def __init__(self, algs=("RS256", "ES256"), issuer_path="", metadata_paths=None, token_lifetime=300):
        self.keys = [new_key(alg) for alg in algs]
        self.signing_kid = self.keys[0].kid
        # "ok", "500", "slow" (sleeps SLOW_SECONDS), "garbage" (not JSON), "empty" ({"keys": []}),
        # "refused" (the metadata's jwks_uri names a port nothing listens on).
        self.jwks_mode = "ok"
        self.issuer_path = issuer_path.rstrip("/")
        # Which well-known documents are served: by default all of them (RFC 8414 and OpenID, each
        # path-inserted and, for OpenID, path-appended when the issuer has a path).
        self.metadata_paths = metadata_paths
        self.token_lifetime = token_lifetime
        self.clients = {}
        self.codes = {}
        self.refresh_tokens = {}
        self.opaque_tokens = {}
        self.lock = threading.Lock()
        # What happened, for the tests to assert on.
        self.jwks_hits = 0
        self.metadata_hits = []
        self.authorizations = []
        self.issued = []
        self.introspections = []
        self.registrations = []
        self.requests = []
        self._refused_port = closed_port()
        self.httpd = None

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base = self.origin + self.issuer_path
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- documents --------------------------------------------------------------------------------
    @property
    def issuer(self):
        return self.base

    def metadata(self):
        base = self.base
        jwks_uri = f"http://127.0.0.1:{self._refused_port}/jwks" if self.jwks_mode == "refused" else f"{base}/jwks"
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "registration_endpoint": f"{base}/register",
            "jwks_uri": jwks_uri,
            "introspection_endpoint": f"{base}/introspect",
            "scopes_supported": list(SCOPES_SUPPORTED),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({key.alg for key in self.keys}),
        }

    def metadata_urls(self):
        """Every path a metadata document is served at (RFC 8414 §3, OpenID Discovery §4)."""
        p = self.issuer_path
        if not p:
            return ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
        return [f"/.well-known/oauth-authorization-server{p}", f"/.well-known/openid-configuration{p}",
                f"{p}/.well-known/openid-configuration"]

    def jwks(self):
        return {"keys": [key.jwk() for key in self.keys]}

    # ---- keys -------------------------------------------------------------------------------------
    def key(self, kid_or_alg=None):
        """The key with this kid, or the first with this alg; the signing key by default."""
        wanted = kid_or_alg or self.signing_kid
        for key in self.keys:
            if key.kid == wanted:
                return key
        for key in self.keys:
            if key.alg == wanted:
                return key
        raise KeyError(wanted)

    def add_key(self, alg="RS256", kid=None):
        key = new_key(alg, kid)
        with self.lock:
            self.keys.append(key)
        return key

    def rotate(self, alg="RS256", drop_old=False, kid=None, key=None):
        """Publishes a new key (or `key`, made earlier with `new_key`) and signs with it from now on;
        `drop_old` unpublishes every other key."""
        key = key or new_key(alg, kid)
        with self.lock:
            self.keys = [key] if drop_old else [*self.keys, key]
            self.signing_kid = key.kid
        return key

    # ---- tokens -----------------------------------------------------------------------------------
    def claims(self, aud, scope="mcp:tools", lifetime=None, **extra):
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": aud, "sub": "user-1", "client_id": "test-client", "scope": scope,
                  "iat": now, "nbf": now, "exp": now + (lifetime or self.token_lifetime), "jti": secrets.token_hex(8)}
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims, key=None, alg=None, headers=None, kid=None):
        """A JWT of exactly these claims, signed by `key` (a SigningKey, a kid or an alg; the signing key
        by default). `kid` overrides the header's kid (None: the key's; False: no kid); `headers` are added."""
        key = key if isinstance(key, SigningKey) else self.key(key)
        header = {"kid": key.kid if kid is None else kid}
        if kid is False:
            header.pop("kid")
        header.update(headers or {})
        return jwt.encode(claims, key.private, algorithm=alg or key.alg, headers=header)

    def mint(self, aud, scope="mcp:tools", key=None, headers=None, kid=None, **extra):
        """A valid-looking access token for resource `aud`; extra claims override the defaults (None drops one)."""
        return self.sign(self.claims(aud, scope, **extra), key=key, headers=headers, kid=kid)

    def foreign_signed(self, claims, kid=None, alg="RS256"):
        """Signed by a key nobody published, under a published kid by default (a bad signature)."""
        stranger = new_key(alg)
        return self.sign(claims, key=stranger, kid=kid or self.key(alg).kid)

    def alg_none(self, claims, kid=None):
        header = {"alg": "none", "typ": "JWT", "kid": kid or self.signing_kid}
        return f"{b64url_json(header)}.{b64url_json(claims)}."

    def hs256_with_public_key(self, claims, key="RS256"):
        """The algorithm-confusion attack: HS256 whose HMAC secret is the RSA public key's PEM, under
        the RSA key's kid (PyJWT refuses to build it, so it is built here by hand)."""
        rsa_key = self.key(key)
        header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
        signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
        signature = hmac.new(rsa_key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(signature)}"

    def opaque(self, aud, scope="mcp:tools", lifetime=None, active=True, **extra):
        """An opaque token only /introspect knows about."""
        token = "opaque-" + secrets.token_urlsafe(24)
        now = int(time.time())
        record = {"active": active, "scope": scope, "aud": aud, "iss": self.issuer, "sub": "user-1",
                  "client_id": "test-client", "token_type": "Bearer", "iat": now,
                  "exp": now + (lifetime or self.token_lifetime)}
        record.update(extra)
        with self.lock:
            self.opaque_tokens[token] = record
        return token

    def revoke(self, token):
        with self.lock:
            if token in self.opaque_tokens:
                self.opaque_tokens[token]["active"] = False

    def _issue(self, client_id, scope, resource):
        claims = self.claims(resource, scope, client_id=client_id)
        if resource is None:
            claims.pop("aud", None)
        access = self.sign(claims)
        refresh = "refresh-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[refresh] = {"client_id": client_id, "scope": scope, "resource": resource}
            self.issued.append(claims)
        body = {"access_token": access, "token_type": "Bearer", "expires_in": self.token_lifetime,
                "refresh_token": refresh}
        if scope:
            body["scope"] = scope
        return body

    # ---- clients ----------------------------------------------------------------------------------
    def register(self, metadata):
        """RFC 7591: returns (status, body)."""
        uris = metadata.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            return 400, {"error": "invalid_redirect_uri", "error_description": "redirect_uris is required"}
        method = metadata.get("token_endpoint_auth_method") or "client_secret_basic"
        if method not in ("none", "client_secret_post", "client_secret_basic"):
            return 400, {"error": "invalid_client_metadata",
                         "error_description": f"unsupported token_endpoint_auth_method {method}"}
        client = Client("client-" + secrets.token_hex(8),
                        None if method == "none" else secrets.token_urlsafe(24), list(uris), method, dict(metadata))
        with self.lock:
            self.clients[client.client_id] = client
            self.registrations.append(client.client_id)
        body = {**metadata, "client_id": client.client_id, "client_id_issued_at": int(time.time()),
                "token_endpoint_auth_method": method, "redirect_uris": client.redirect_uris}
        if client.client_secret:
            body["client_secret"] = client.client_secret
            body["client_secret_expires_at"] = 0
        return 201, body

    def resolve_client(self, client_id):
        """A registered client, or the client described by a client ID metadata document at that URL."""
        with self.lock:
            client = self.clients.get(client_id)
        if client is not None:
            return client
        if not client_id.startswith(("https://", "http://")):
            return None
        try:
            with urllib.request.urlopen(client_id, timeout=5) as response:
                document = json.load(response)
        except (OSError, ValueError):
            return None
        if not isinstance(document, dict) or document.get("client_id") != client_id:
            return None
        uris = document.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            return None
        return Client(client_id, None, list(uris), "none", document)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    @property
    def fake(self):
        return self.server.fake

    # ---- plumbing ---------------------------------------------------------------------------------
    def _send(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if body or status != 302:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _oauth_error(self, status, error, description, headers=None):
        self._send(status, {"error": error, "error_description": description}, headers=headers)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _form(self):
        parsed = urllib.parse.parse_qs(self._body().decode(), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}, parsed

    def _route(self):
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        prefix = self.fake.issuer_path
        local = path[len(prefix):] if prefix and path.startswith(prefix + "/") else (path if not prefix else None)
        return path, local, urllib.parse.parse_qs(split.query, keep_blank_values=True)

    def _basic(self):
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return ("", "")
        return urllib.parse.unquote(user), urllib.parse.unquote(password)

    # ---- GET --------------------------------------------------------------------------------------
    def do_GET(self):
        path, local, query = self._route()
        fake = self.fake
        with fake.lock:
            fake.requests.append(("GET", path))
        served = fake.metadata_paths if fake.metadata_paths is not None else fake.metadata_urls()
        if path in served and path in fake.metadata_urls():
            with fake.lock:
                fake.metadata_hits.append(path)
            return self._send(200, fake.metadata())
        if local == "/jwks":
            return self._jwks()
        if local == "/authorize":
            return self._authorize({k: v[0] for k, v in query.items()})
        self._send(404, {"error": "not_found", "path": path})

    def _jwks(self):
        fake = self.fake
        with fake.lock:
            fake.jwks_hits += 1
            mode = fake.jwks_mode
            document = fake.jwks()
        if mode == "500":
            return self._send(500, b"internal error", content_type="text/plain")
        if mode == "slow":
            time.sleep(SLOW_SECONDS)
        if mode == "garbage":
            return self._send(200, b"<html>this is not a key set</html>\x00\xff", content_type="application/json")
        if mode == "empty":
            return self._send(200, {"keys": []})
        self._send(200, document, content_type="application/jwk-set+json")

    def _authorize(self, params):
        fake = self.fake
        client_id = params.get("client_id")
        redirect_uri = params.get("redirect_uri")
        client = fake.resolve_client(client_id) if client_id else None
        if client is None:
            return self._oauth_error(400, "invalid_client", f"unknown client_id {client_id!r}")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri not in client.redirect_uris:
            return self._oauth_error(400, "invalid_request", f"redirect_uri {redirect_uri!r} is not registered")

        def fail(error, description):
            query = {"error": error, "error_description": description, "iss": fake.issuer}
            if "state" in params:
                query["state"] = params["state"]
            self._send(302, headers={"Location": _with_query(redirect_uri, query)})

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "only response_type=code")
        if not params.get("code_challenge"):
            return fail("invalid_request", "code_challenge is required (PKCE)")
        if params.get("code_challenge_method") != "S256":
            return fail("invalid_request", "code_challenge_method must be S256")
        code = "code-" + secrets.token_urlsafe(24)
        record = {"client_id": client.client_id, "redirect_uri": redirect_uri, "challenge": params["code_challenge"],
                  "resource": params.get("resource"), "scope": params.get("scope", ""), "expires": time.time() + 60}
        with fake.lock:
            fake.codes[code] = record
            fake.authorizations.append(dict(params))
        query = {"code": code, "iss": fake.issuer}
        if "state" in params:
            query["state"] = params["state"]
        self._send(302, headers={"Location": _with_query(redirect_uri, query)})

    # ---- POST -------------------------------------------------------------------------------------
    def do_POST(self):
        path, local, _ = self._route()
        with self.fake.lock:
            self.fake.requests.append(("POST", path))
        if local == "/token":
            return self._token()
        if local == "/register":
            try:
                metadata = json.loads(self._body() or b"null")
            except ValueError:
                return self._oauth_error(400, "invalid_client_metadata", "the body is not JSON")
            if not isinstance(metadata, dict):
                return self._oauth_error(400, "invalid_client_metadata", "the body is not a JSON object")
            status, body = self.fake.register(metadata)
            return self._send(status, body)
        if local == "/introspect":
            return self._introspect()
        self._body()
        self._send(404, {"error": "not_found", "path": path})

    def _authenticate_client(self, form):
        """RFC 6749 §2.3: the registered client making the token request, or an error string."""
        basic = self._basic()
        client_id = basic[0] if basic else form.get("client_id")
        if not client_id:
            return None, "client_id is missing"
        client = self.fake.resolve_client(client_id)
        if client is None:
            return None, f"unknown client {client_id!r}"
        method = client.token_endpoint_auth_method
        if method == "client_secret_basic":
            if not basic or not hmac.compare_digest(basic[1], client.client_secret or ""):
                return None, "client_secret_basic authentication failed"
        elif method == "client_secret_post":
            if not hmac.compare_digest(form.get("client_secret", ""), client.client_secret or ""):
                return None, "client_secret_post authentication failed"
        return client, None

    def _token(self):
        fake = self.fake
        form, multi = self._form()
        client, problem = self._authenticate_client(form)
        if client is None:
            return self._oauth_error(401, "invalid_client", problem, headers={"WWW-Authenticate": "Basic"})
        grant = form.get("grant_type")
        resources = multi.get("resource", [])
        if len(resources) > 1:
            return self._oauth_error(400, "invalid_target", "one resource per token")
        requested_resource = resources[0] if resources else None
        if grant == "authorization_code":
            with fake.lock:
                record = fake.codes.pop(form.get("code", ""), None)
            if record is None or record["expires"] < time.time():
                return self._oauth_error(400, "invalid_grant", "unknown, used or expired code")
            if record["client_id"] != client.client_id:
                return self._oauth_error(400, "invalid_grant", "the code was issued to another client")
            if form.get("redirect_uri") != record["redirect_uri"]:
                return self._oauth_error(400, "invalid_grant", "redirect_uri differs from the authorization request")
            verifier = form.get("code_verifier")
            if not verifier or not hmac.compare_digest(s256(verifier), record["challenge"]):
                return self._oauth_error(400, "invalid_grant", "PKCE verification failed")
            resource = requested_resource or record["resource"]
            if record["resource"] and resource != record["resource"]:
                return self._oauth_error(400, "invalid_target", "resource differs from the authorization request")
            return self._send(200, fake._issue(client.client_id, record["scope"], resource))
        if grant == "refresh_token":
            with fake.lock:
                record = fake.refresh_tokens.get(form.get("refresh_token", ""))
            if record is None or record["client_id"] != client.client_id:
                return self._oauth_error(400, "invalid_grant", "unknown refresh token")
            scope = record["scope"]
            if form.get("scope"):
                if not set(form["scope"].split()) <= set(scope.split()):
                    return self._oauth_error(400, "invalid_scope", "a refresh cannot widen the scope")
                scope = form["scope"]
            resource = requested_resource or record["resource"]
            if record["resource"] and resource != record["resource"]:
                return self._oauth_error(400, "invalid_target", "resource differs from the original grant")
            return self._send(200, fake._issue(client.client_id, scope, resource))
        self._oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def _introspect(self):
        fake = self.fake
        form, _ = self._form()
        basic = self._basic()
        if basic is None or tuple(basic) != INTROSPECTION_CLIENT:
            return self._oauth_error(401, "invalid_client", "introspection needs the resource server's credentials",
                                     headers={"WWW-Authenticate": 'Basic realm="introspection"'})
        token = form.get("token", "")
        with fake.lock:
            fake.introspections.append(token)
            record = dict(fake.opaque_tokens.get(token) or {})
        if not record:
            record = self._introspect_jwt(token)
        if not record or not record.get("active") or record.get("exp", 0) < time.time():
            return self._send(200, {"active": False})
        self._send(200, record)

    def _introspect_jwt(self, token):
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.fake.key(kid)
            claims = jwt.decode(token, key.public, algorithms=[key.alg], options={"verify_aud": False})
        except (jwt.PyJWTError, KeyError):
            return None
        return {"active": True, **claims, "token_type": "Bearer"}


def _with_query(url, params):
    split = urllib.parse.urlsplit(url)
    query = "&".join(filter(None, [split.query, urllib.parse.urlencode(params)]))
    return urllib.parse.urlunsplit(split._replace(query=query))


# ---- a client's side, by hand ---------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def follow_authorization(url):
    """GETs an authorization URL without following its redirect; returns the redirect's query
    parameters (code, state, iss, or error)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            raise AssertionError(f"the authorization endpoint answered {response.status}, not a redirect")
    except urllib.error.HTTPError as error:
        if error.code not in (302, 303):
            raise AssertionError(f"the authorization endpoint answered {error.code}: {error.read()!r}") from None
        location = error.headers["Location"]
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(location).query).items()}


def pkce_pair():
    verifier = secrets.token_urlsafe(64)[:96]
    return verifier, s256(verifier)


def _post_form(url, data, auth=None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def obtain_token(server, resource, scope="mcp:tools", redirect_uri="http://127.0.0.1:9/callback",
                 auth_method="client_secret_basic"):
    """Registration, authorization and token exchange by hand (urllib): the token response."""
    request = urllib.request.Request(f"{server.base}/register", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"redirect_uris": [redirect_uri], "client_name": "by hand",
                                                      "token_endpoint_auth_method": auth_method}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        client = json.load(response)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    query = urllib.parse.urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect_uri,
                                    "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
                                    "resource": resource, "scope": scope})
    answer = follow_authorization(f"{server.base}/authorize?{query}")
    assert answer.get("state") == state and "code" in answer, answer
    data = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": redirect_uri,
            "code_verifier": verifier, "resource": resource}
    auth = None
    if auth_method == "client_secret_basic":
        auth = (client["client_id"], client["client_secret"])
    else:
        data["client_id"] = client["client_id"]
        if auth_method == "client_secret_post":
            data["client_secret"] = client["client_secret"]
    status, body = _post_form(f"{server.base}/token", data, auth)
    assert status == 200, body
    body["_client"] = client
    return body
