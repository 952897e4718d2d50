"""The peer of benchmarks/bench_mcp.py: FastMCP serving the same `echo` tool, stateless
(`stateless_http=True`, as a load-balanced deployment needs), JSON responses (its faster mode).
Usage: fastmcp_echo_server.py PORT"""
import sys

from fastmcp import FastMCP

mcp = FastMCP("echo")


@mcp.tool
def echo(prompt: str, n: int) -> dict:
    """Returns its arguments."""
    return {"prompt": prompt, "n": n}


if __name__ == "__main__":
    mcp.run(transport="http", host="127.0.0.1", port=int(sys.argv[1]), stateless_http=True, json_response=True,
            show_banner=False, log_level="warning")
