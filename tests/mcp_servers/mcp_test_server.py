"""A real MCP server for the tests, written with the official SDK: `python mcp_test_server.py http PORT LOG` serves
streamable HTTP on loopback, `python mcp_test_server.py stdio LOG` speaks stdio. LOG gets a JSON line per call of
``send`` (what it did, with the idempotency key it was given)."""

import json
import sys

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations

server = FastMCP("proctor-test")
LOG = sys.argv[-1]


@server.tool(description="Look up a customer account by its key.", annotations=ToolAnnotations(readOnlyHint=True))
def lookup(key: str, ctx: Context) -> dict:
    request = getattr(ctx.request_context, "request", None)
    authorized = request is not None and request.headers.get("authorization") == "Bearer s3cret-token"
    return {"key": key, "name": f"Account {key}", "plan": "gold", "authorized": authorized}


@server.tool(description="Send a message to a customer (it leaves at once).",
             annotations=ToolAnnotations(destructiveHint=False, readOnlyHint=False))
def send(to: str, text: str, ctx: Context) -> str:
    key = getattr(ctx.request_context.meta, "idempotency_key", None) if ctx.request_context.meta else None
    with open(LOG, "a") as log:
        log.write(json.dumps({"to": to, "text": text, "idempotency_key": key}) + "\n")
    return f"sent to {to}"


@server.tool(description="Always fails.")
def explode() -> str:
    raise RuntimeError("the warehouse is on fire")


@server.tool(description="Adds a tool to this server's list (the list changes).")
def grow() -> str:
    @server.tool(description="A tool that appeared later.")
    def grown(n: int) -> int:
        return n * 2

    return "grown"


if __name__ == "__main__":
    if sys.argv[1] == "http":
        server.settings.host, server.settings.port = "127.0.0.1", int(sys.argv[2])
        server.settings.log_level = "WARNING"
        server.run(transport="streamable-http")
    else:
        server.run(transport="stdio")
