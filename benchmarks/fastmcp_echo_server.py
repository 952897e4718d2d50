"""The peer of benchmarks/bench_mcp.py: FastMCP serving the same `echo` tool, stateless
(`stateless_http=True`, as a load-balanced deployment needs), JSON responses (its faster mode).
With JWT_JWKS_URI set, /mcp requires a bearer token checked by FastMCP's own `JWTVerifier`
(signature against that JWKS; JWT_ISSUER, JWT_AUDIENCE, JWT_REQUIRED_SCOPES (space- or
comma-separated) and JWT_ALGORITHM (RS256) when given); without it, no authentication, as before.
Usage: fastmcp_echo_server.py PORT"""
import os
import sys

from fastmcp import FastMCP


def verifier():
    jwks_uri = os.environ.get("JWT_JWKS_URI")
    if not jwks_uri:
        return None
    from fastmcp.server.auth.providers.jwt import JWTVerifier

    scopes = os.environ.get("JWT_REQUIRED_SCOPES", "").replace(",", " ").split()
    return JWTVerifier(jwks_uri=jwks_uri, issuer=os.environ.get("JWT_ISSUER") or None,
                       audience=os.environ.get("JWT_AUDIENCE") or None,
                       algorithm=os.environ.get("JWT_ALGORITHM") or "RS256", required_scopes=scopes or None)


mcp = FastMCP("echo", auth=verifier())


@mcp.tool
def echo(prompt: str, n: int) -> dict:
    """Returns its arguments."""
    return {"prompt": prompt, "n": n}


if __name__ == "__main__":
    mcp.run(transport="http", host="127.0.0.1", port=int(sys.argv[1]), stateless_http=True, json_response=True,
            show_banner=False, log_level="warning")
