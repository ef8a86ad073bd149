"""Talking to an MCP server with the official SDK: list its tools, call one. A connection per use (on the
process's background loop), with a time limit; every failure comes back as McpUnavailable with a sentence
for people (and the model), never a traceback."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from contextlib import asynccontextmanager

import anyio
import httpx
from django.conf import settings
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from approvals import outbound
from console import aio


class McpUnavailable(Exception):
    """The server could not be reached, or broke off; the message says so in a sentence."""


@dataclass(frozen=True)
class Connection:
    transport: str
    url: str = ""
    headers: dict | None = None
    command: tuple[str, ...] = ()


def address_problem(url: str) -> str:
    """The webhook URL rules, and every address the host resolves to now (checked before each connection)."""
    if problem := outbound.url_problem(url):
        return problem
    parts = urlsplit(url)
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443,
                                                              type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        return f"{parts.hostname} does not resolve."
    allow_loopback = settings.WEBHOOK_ALLOW_HTTP
    if not resolved or not all(outbound.address_allowed(a, allow_loopback=allow_loopback) for a in resolved):
        return "That address is inside the server's own network; give the MCP server's public address."
    return ""


@asynccontextmanager
async def _transport(connection: Connection):
    if connection.transport == "stdio":
        command, *args = connection.command
        async with stdio_client(StdioServerParameters(command=command, args=list(args))) as streams:
            yield streams
        return
    # No redirects: a server may not send us on to an address we would refuse.
    async with create_mcp_http_client(headers=connection.headers or None,
                                      timeout=httpx.Timeout(10, read=60)) as http:
        http.follow_redirects = False
        async with streamable_http_client(connection.url, http_client=http) as streams:
            yield streams


async def _with_session(connection: Connection, work, timeout: float):
    with anyio.fail_after(timeout):
        async with _transport(connection) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            return await work(session)


def _run(connection: Connection, work, timeout: float):
    if connection.transport == "http" and (problem := address_problem(connection.url)):
        raise McpUnavailable(problem)
    try:
        return aio.run(_with_session(connection, work, timeout))
    except TimeoutError:
        raise McpUnavailable(f"The MCP server did not answer within {timeout:g} s.") from None
    except McpUnavailable:
        raise
    except BaseException as error:  # an ExceptionGroup from the SDK's task group, a refused connection, …
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        raise McpUnavailable(f"The MCP server cannot be reached ({_first_cause(error)}).") from None


def _first_cause(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return type(error).__name__


def list_tools(connection: Connection, *, timeout: float = 15) -> list[dict]:
    async def work(session):
        listed = await session.list_tools()
        return [{"name": t.name, "description": t.description or "", "input_schema": t.inputSchema or {},
                 "hints": (t.annotations.model_dump(exclude_none=True) if t.annotations else {})}
                for t in listed.tools]

    return _run(connection, work, timeout)


def call_tool(connection: Connection, name: str, arguments: dict, *, idempotency_key: str, timeout: float) -> dict:
    """The tool's result as {is_error, text, structured}. The idempotency key goes in the request's _meta."""
    async def work(session):
        result = await session.call_tool(name, arguments, read_timeout_seconds=timedelta(seconds=timeout),
                                         meta={"idempotency_key": idempotency_key})
        text = "\n".join(part.text for part in result.content if getattr(part, "type", "") == "text")
        return {"is_error": bool(result.isError), "text": text, "structured": result.structuredContent}

    return _run(connection, work, timeout + 5)
