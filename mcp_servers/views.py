"""The MCP servers pages (admins): add a server, test its connection (the tools it offers), accept a changed tool
list, classify its tools, remove it. Secrets are never rendered."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from console.access import tenant_access
from console.input import strict_int
from mcp_servers.client import McpUnavailable
from mcp_servers.forms import ServerForm
from mcp_servers.models import McpServer, McpTool
from mcp_servers.services import (
    ServerRefused,
    changes_accept,
    server_add,
    server_remove,
    server_test,
    tool_classify,
    tool_list_diff,
)

RISKS = [(0, "0 · read"), (1, "1 · local write"), (2, "2 · external draft"), (3, "3 · external side effect"),
         (4, "4 · high risk")]


@login_required
def servers(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    form = ServerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            server = server_add(tenant=membership.tenant, actor=request.user, name=form.cleaned_data["name"],
                                url=form.cleaned_data["url"], stdio_name=form.cleaned_data["stdio_name"],
                                headers=form.cleaned_data["header_map"], bearer=form.cleaned_data["bearer"])
        except ServerRefused as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"{server.name} added. Test the connection to see its tools.")
            return redirect("admin_mcp_server", tenant_slug, server.pk)
    return render(request, "mcp_servers/servers.html", {
        "form": form, "servers": McpServer.objects.for_tenant(membership.tenant)})


def _server(membership, server_id: int) -> McpServer:
    return get_object_or_404(McpServer.objects.for_tenant(membership.tenant), pk=server_id)


@login_required
def server(request: HttpRequest, tenant_slug: str, server_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    found = _server(membership, server_id)
    return render(request, "mcp_servers/server.html", {
        "server": found, "tools": found.tools.select_related("server", "classified_by"), "risks": RISKS,
        "diff": tool_list_diff(found, found.offered) if found.offered else None})


@login_required
@require_POST
def server_action(request: HttpRequest, tenant_slug: str, server_id: int, action: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    found = _server(membership, server_id)
    if action == "test":
        try:
            diff = server_test(server=found, actor=request.user)
        except McpUnavailable as error:
            messages.error(request, str(error))
        else:
            count = found.tools.count()
            messages.success(request, f"Connected: {count} tools." if not any(diff[k] for k in ("added", "removed",
                                                                                                "changed"))
                             or diff["first"] else "Connected; its tool list changed: review the changes below.")
    elif action == "accept":
        changes_accept(server=found, actor=request.user)
        messages.success(request, "The new tool list is in use; new and changed tools are at risk 3 until classified.")
    elif action == "remove":
        server_remove(server=found, actor=request.user)
        messages.success(request, f"{found.name} removed; agents can no longer use its tools.")
        return redirect("admin_mcp_servers", tenant_slug)
    else:
        return HttpResponse(status=404)
    return redirect("admin_mcp_server", tenant_slug, found.pk)


@login_required
@require_POST
def tool_risk(request: HttpRequest, tenant_slug: str, server_id: int, tool_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    found = _server(membership, server_id)
    tool = get_object_or_404(McpTool.objects.filter(server=found).select_related("server"), pk=tool_id)
    risk = strict_int(request.POST.get("risk", ""))
    try:
        tool_classify(tool=tool, risk=-1 if risk is None else risk, actor=request.user)
        messages.success(request, f"{tool.full_name} is at risk {risk}.")
    except ServerRefused as error:
        messages.error(request, str(error))
    return redirect("admin_mcp_server", tenant_slug, found.pk)
