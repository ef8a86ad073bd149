"""MCP servers: added by admins (a URL with headers or a bearer token, sealed and never shown again; or a stdio
server from the operator's list), tested (its tools listed), its tools classified; a changed tool list is kept
as an offer until an admin accepts it. Every change audited; every change a step reads raises the tenant's
config_version."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from console.models import tenant_config_changed as _config_changed
from console.secrets_box import seal, unseal
from console.services import audit_record
from mcp_servers.client import Connection, McpUnavailable, address_problem, list_tools
from mcp_servers.models import McpServer, McpTool
from mcp_servers.tools import forget

MAX_SERVERS = 20


def tenant_config_changed(tenant_id: int) -> None:
    """Steps read the tenant's MCP tools afresh; so does this process at once."""
    _config_changed(tenant_id)
    transaction.on_commit(lambda: forget(tenant_id))
    forget(tenant_id)


class ServerRefused(Exception):
    """A server that cannot be added as asked; the message says why."""


def connection_of(server: McpServer) -> Connection:
    if server.transport == McpServer.Transport.STDIO:
        command = settings.MCP_STDIO_SERVERS.get(server.stdio_name)
        if not command:
            raise McpUnavailable(f"The stdio server '{server.stdio_name}' is no longer in the operator's list.")
        return Connection("stdio", command=tuple(command))
    return Connection("http", url=server.url, headers=unseal(server.secret).get("headers", {}))


def server_add(*, tenant, actor, name: str, url: str = "", stdio_name: str = "", headers: dict | None = None,
               bearer: str = "") -> McpServer:
    name = slugify(name)[:40]
    if not name:
        raise ServerRefused("Give the server a short name (letters, digits, dashes): its tools are mcp:<name>.<tool>.")
    if McpServer.objects.for_tenant(tenant).filter(name=name).exists():
        raise ServerRefused(f"A server named '{name}' exists already.")
    if McpServer.objects.for_tenant(tenant).count() >= MAX_SERVERS:
        raise ServerRefused(f"A tenant connects at most {MAX_SERVERS} MCP servers.")
    headers = {str(k).strip(): str(v).strip() for k, v in (headers or {}).items() if str(k).strip()}
    if bearer.strip():
        headers["Authorization"] = f"Bearer {bearer.strip()}"
    if any("\n" in k + v or "\r" in k + v for k, v in headers.items()):
        raise ServerRefused("Header names and values are one line each.")
    if stdio_name:
        if stdio_name not in settings.MCP_STDIO_SERVERS:
            raise ServerRefused("Choose a stdio server from the operator's list.")
        transport, url, headers = McpServer.Transport.STDIO, "", {}
    else:
        if len(url) > 500 or (problem := address_problem(url.strip())):
            raise ServerRefused(problem or "Keep the URL under 500 characters.")
        transport, url = McpServer.Transport.HTTP, url.strip()
    hint = ", ".join(sorted(headers)) if headers else ""
    with transaction.atomic():
        server = McpServer.objects.create(tenant=tenant, name=name, transport=transport, url=url, stdio_name=stdio_name,
                                          secret=seal({"headers": headers}) if headers else "", secret_hint=hint[:120],
                                          created_by=actor if getattr(actor, "pk", None) else None)
        audit_record(tenant=tenant, actor=actor, verb="mcp_server.added", target=name,
                     data={"transport": transport, "url": url, "stdio": stdio_name, "headers": sorted(headers)})
    return server


def server_remove(*, server: McpServer, actor) -> None:
    with transaction.atomic():
        server.delete()
        tenant_config_changed(server.tenant_id)
        audit_record(tenant=server.tenant_id, actor=actor, verb="mcp_server.removed", target=server.name)


def _as_offered(tools: list[dict]) -> dict[str, dict]:
    return {t["name"]: t for t in tools}


def tool_list_diff(server: McpServer, offered: list[dict]) -> dict:
    """What the offered list changes against the tools in use: added, removed, changed (description or schema)."""
    current = {t.name: t for t in server.tools.all()}
    now = _as_offered(offered)
    changed = [name for name in sorted(set(current) & set(now))
               if (current[name].description, current[name].input_schema) != (now[name]["description"],
                                                                              now[name]["input_schema"])]
    return {"added": sorted(set(now) - set(current)), "removed": sorted(set(current) - set(now)), "changed": changed}


def server_test(*, server: McpServer, actor=None) -> dict:
    """Connect and list the tools. The first list is taken at once (each tool at risk 3 until classified); a
    later list that differs is kept as an offer (the diff) until an admin accepts it. Returns the diff."""
    try:
        offered = list_tools(connection_of(server))
    except McpUnavailable as error:
        McpServer.objects.for_tenant(server.tenant_id).filter(pk=server.pk).update(
            status="down", last_error=str(error)[:300], last_checked_at=timezone.now())
        raise
    diff = tool_list_diff(server, offered)
    with transaction.atomic():
        server = McpServer.objects.select_for_update().get(pk=server.pk)
        first = server.status == "new" and not server.tools.exists()
        server.last_checked_at, server.last_error = timezone.now(), ""
        if first:
            _take(server, offered)
            server.status, server.offered = "ok", None
            audit_record(tenant=server.tenant_id, actor=actor, verb="mcp_server.tools_taken", target=server.name,
                         data={"tools": sorted(_as_offered(offered))})
        elif any(diff.values()):
            server.status, server.offered = "changed", offered
        else:
            server.status, server.offered = "ok", None
        server.save(update_fields=["status", "offered", "last_checked_at", "last_error"])
    return {**diff, "first": first}


def _take(server: McpServer, offered: list[dict]) -> None:
    now = _as_offered(offered)
    McpTool.objects.filter(server=server).exclude(name__in=list(now)).delete()
    for name, tool in now.items():
        McpTool.objects.update_or_create(server=server, name=name, defaults={
            "tenant_id": server.tenant_id, "description": tool["description"][:5000],
            "input_schema": tool["input_schema"], "hints": tool["hints"]})
    tenant_config_changed(server.tenant_id)


def changes_accept(*, server: McpServer, actor) -> dict:
    """Take the offered tool list: new tools at risk 3 until classified; a changed tool keeps its classification
    only if its schema is the same."""
    with transaction.atomic():
        server = McpServer.objects.select_for_update().get(pk=server.pk)
        if not server.offered:
            return {"added": [], "removed": [], "changed": []}
        diff = tool_list_diff(server, server.offered)
        McpTool.objects.filter(server=server, name__in=diff["changed"]).update(risk=None, classified_by=None,
                                                                            classified_at=None)
        _take(server, server.offered)
        server.offered, server.status = None, "ok"
        server.save(update_fields=["offered", "status"])
        audit_record(tenant=server.tenant_id, actor=actor, verb="mcp_server.tools_accepted", target=server.name,
                     data=diff)
    return diff


def tool_classify(*, tool: McpTool, risk: int, actor) -> McpTool:
    if not isinstance(risk, int) or not 0 <= risk <= 4:
        raise ServerRefused("Risk is a level from 0 to 4.")
    with transaction.atomic():
        before = tool.risk
        McpTool.objects.filter(pk=tool.pk).update(risk=risk, classified_by=actor if getattr(actor, "pk", None) else None,
                                                  classified_at=timezone.now())
        tenant_config_changed(tool.tenant_id)
        audit_record(tenant=tool.tenant_id, actor=actor, verb="mcp_tool.classified", target=tool.full_name,
                     data={"from": before, "to": risk, "suggested": tool.suggested_risk})
    tool.refresh_from_db()
    return tool
