"""MCP servers over the API (admin scope and role): the same services as the pages. Secrets go in, never out."""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from console.api_auth import token_scopes
from console.api_errors import errors
from mcp_servers.client import McpUnavailable
from mcp_servers.models import McpServer, McpTool
from mcp_servers.services import ServerRefused, changes_accept, server_add, server_remove, server_test, tool_classify

router = Router(tags=["mcp servers"], auth=token_scopes("admin", section="admin"))


class McpToolOut(Schema):
    name: str = Field(description="As agents name it: mcp:<server>.<tool>")
    description: str
    input_schema: dict
    hints: dict
    risk: int
    classified: bool
    suggested_risk: int

    @staticmethod
    def resolve_name(tool: McpTool) -> str:
        return tool.full_name

    @staticmethod
    def resolve_risk(tool: McpTool) -> int:
        return tool.effective_risk

    @staticmethod
    def resolve_classified(tool: McpTool) -> bool:
        return tool.risk is not None


class McpServerOut(Schema):
    id: int
    name: str
    transport: str
    url: str
    stdio_name: str
    secret_set: str = Field(description="Which headers are set (their values are never returned)")
    status: str
    last_error: str
    last_checked_at: datetime | None
    offered_change: bool = Field(description="The server offers a changed tool list waiting to be accepted")
    tools: list[McpToolOut]

    @staticmethod
    def resolve_secret_set(server: McpServer) -> str:
        return server.secret_hint

    @staticmethod
    def resolve_offered_change(server: McpServer) -> bool:
        return bool(server.offered)

    @staticmethod
    def resolve_tools(server: McpServer) -> list:
        return list(server.tools.select_related("server"))


class McpServerIn(Schema):
    name: str = Field(max_length=40)
    url: str = Field(default="", max_length=500, description="Streamable HTTP; https and a public address")
    stdio_name: str = Field(default="", max_length=60, description="Or one of the operator's stdio servers")
    bearer: str = Field(default="", max_length=2000, description="Sent as Authorization: Bearer …; stored encrypted")
    headers: dict[str, str] = Field(default_factory=dict, description="Other headers; stored encrypted")


class RiskIn(Schema):
    risk: int = Field(ge=0, le=4)


def _server(request, server_id: int) -> McpServer:
    server = McpServer.objects.for_tenant(request.tenant).filter(pk=server_id).first()
    if server is None:
        raise Http404
    return server


@router.get("/mcp-servers", response={200: list[McpServerOut], **errors()}, summary="The tenant's MCP servers")
def list_servers(request):
    return McpServer.objects.for_tenant(request.tenant)


@router.post("/mcp-servers", response={201: McpServerOut, **errors()}, summary="Add an MCP server")
def add_server(request, body: McpServerIn):
    try:
        server = server_add(tenant=request.tenant, actor=request.api_token.created_by, name=body.name, url=body.url,
                            stdio_name=body.stdio_name, headers=body.headers, bearer=body.bearer)
    except ServerRefused as error:
        raise HttpError(422, str(error)) from None
    return Status(201, server)


@router.post("/mcp-servers/{server_id}/test", response={200: McpServerOut, **errors(404, 503)},
             summary="Connect and list its tools (the first list is taken; a changed one waits to be accepted)")
def test_server(request, server_id: int):
    server = _server(request, server_id)
    try:
        server_test(server=server, actor=request.api_token.created_by)
    except McpUnavailable as error:
        raise HttpError(503, str(error)) from None
    return _server(request, server_id)


@router.post("/mcp-servers/{server_id}/accept", response={200: McpServerOut, **errors(404)},
             summary="Accept the changed tool list the server offers")
def accept_changes(request, server_id: int):
    changes_accept(server=_server(request, server_id), actor=request.api_token.created_by)
    return _server(request, server_id)


@router.put("/mcp-servers/{server_id}/tools/{tool_name}/risk", response={200: McpToolOut, **errors(404)},
            summary="Classify a tool (its risk, 0–4)")
def classify(request, server_id: int, tool_name: str, body: RiskIn):
    tool = McpTool.objects.filter(server=_server(request, server_id), name=tool_name).select_related("server").first()
    if tool is None:
        raise Http404
    return tool_classify(tool=tool, risk=body.risk, actor=request.api_token.created_by)


@router.delete("/mcp-servers/{server_id}", response={204: None, **errors(404)}, summary="Remove an MCP server")
def remove_server(request, server_id: int):
    server_remove(server=_server(request, server_id), actor=request.api_token.created_by)
    return Status(204, None)
