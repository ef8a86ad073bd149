"""The tenant's MCP tools as registry tools (agents.tools.register_tool_source): ``mcp:<server>.<tool>`` with the
server's JSON schema (validated like any tool's arguments), its risk (3 until classified), the call timeout, a
retry on an unreachable server, the run's idempotency key passed in the request's _meta. A server that is down
gives the model a clear tool error and opens a circuit breaker (Redis, shared by every worker) so the next
calls fail fast until it has cooled down. Kept per process until the tenant's config_version rises."""

from __future__ import annotations

import json
from functools import partial

from django.conf import settings

from agents.gateway import Breaker, GatewayPolicy
from agents.tools import Tool, ToolError
from agents.tools.registry import JsonArguments
from console.health import redis_client
from console.models import Tenant, TenantConfigCache
from mcp_servers.client import McpUnavailable, call_tool
from mcp_servers.models import McpTool

RETRIES = 1


def _breaker() -> Breaker:
    # Open after two calls in a minute failed (each after its retry); half-open again after 30 s.
    return Breaker(redis_client(timeout=2), GatewayPolicy(breaker_failures=2, breaker_open_seconds=30))


def _call(tool_id: int, full_name: str, context, arguments: JsonArguments) -> dict:
    from mcp_servers.services import connection_of

    tool = McpTool.objects.select_related("server").filter(pk=tool_id, tenant_id=context.tenant.pk).first()
    if tool is None or not tool.server.enabled:
        raise ToolError(f"{full_name} is no longer available; do the task without it.", error_type="tool_unavailable")
    breaker, key = _breaker(), f"mcp-{tool.server_id}"
    if not breaker.allows(key):
        raise ToolError(f"The MCP server '{tool.server.name}' is down (several calls failed just now); {full_name} "
                        "cannot be used for a while. Carry on without it or try again later.", retryable=True,
                        error_type="tool_unavailable")
    for attempt in range(RETRIES + 1):
        try:
            result = call_tool(connection_of(tool.server), tool.name, arguments.model_dump(),
                               idempotency_key=context.idempotency_key, timeout=settings.MCP_CALL_TIMEOUT_SECONDS)
            break
        except McpUnavailable as error:
            if attempt == RETRIES:
                breaker.record_failure(key)
                raise ToolError(f"{full_name} could not be called: {error}", retryable=True,
                                error_type="tool_unavailable") from None
    breaker.record_success(key)
    if result["is_error"]:
        raise ToolError(f"{full_name} failed: {result['text'] or 'the server gave no reason'}", error_type="tool_error")
    if result["structured"] is not None:
        return result["structured"]
    try:
        parsed = json.loads(result["text"])  # a server that answers JSON as text
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"text": result["text"]}


def _as_tool(tool: McpTool) -> Tool:
    return Tool(name=tool.full_name, description=tool.description or tool.name, arguments=JsonArguments,
                risk=tool.effective_risk, function=partial(_call, tool.pk, tool.full_name),
                timeout_seconds=settings.MCP_CALL_TIMEOUT_SECONDS, max_retries=RETRIES,
                idempotent=bool(tool.hints.get("idempotentHint")), input_schema=tool.input_schema or {"type": "object"})


def _tools_of(tenant_id: int) -> dict[str, Tool]:
    return {t.full_name: _as_tool(t) for t in McpTool.objects.filter(tenant_id=tenant_id, server__enabled=True)
            .select_related("server")}


_tools = TenantConfigCache(_tools_of)


def tenant_mcp_tools(tenant) -> dict[str, Tool]:
    tenant_id = getattr(tenant, "pk", tenant)
    version = getattr(tenant, "config_version", None)
    if version is None:
        version = Tenant.objects.filter(pk=tenant_id).values_list("config_version", flat=True).first()
    return _tools.get(tenant_id, version)


forget = _tools.forget  # this process's copy, after a change made here (the caller's tenant row may hold the old version)
