"""MCP servers as tool sources, against real MCP servers written with the SDK (streamable HTTP on loopback, and
stdio from the operator's list): discovery, classification, governed calls (validation the model can act on, the
side-effecting tool waits for approval and runs once with the idempotency key), a failing tool, a server that is
down (tool error, then the breaker), a changed tool list shown as a diff to accept, secrets sealed and never shown."""

import json
import sys
from pathlib import Path

import pytest
from django.urls import reverse
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from agents.gateway import MODEL_PROVIDERS, PROVIDER_MODELS, register_model_provider
from agents.models import Agent, ToolInvocation
from agents.services import run_start
from agents.tools import ToolContext, tool_for
from agents.tools.registry import JsonArguments, ToolError
from console.devstack import free_port
from approvals.services import approval_decide
from console.models import AuditEvent
from console.secrets_box import unseal
from mcp_servers.client import Connection, McpUnavailable, call_tool
from mcp_servers.models import McpServer, McpTool
from mcp_servers.services import changes_accept, server_add, server_test, tool_classify
from tests.conftest import spawn, wait_for
from tests.factories import advance

SERVER_SCRIPT = Path(__file__).with_name("mcp_test_server.py")


class RunningServer:
    def __init__(self, tmp_path):
        self.port, self.log = free_port(), tmp_path / "sent.jsonl"
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc = None

    def start(self, tmp_path):
        self.proc = spawn([sys.executable, str(SERVER_SCRIPT), "http", str(self.port), str(self.log)],
                          tmp_path / f"mcp-{self.port}.log")

        def up():
            try:
                return bool(call_tool(Connection("http", url=self.url), "lookup", {"key": "ping"},
                                      idempotency_key="probe", timeout=2))
            except McpUnavailable:
                return self.proc.process.poll() is not None

        wait_for(up, 30, message="the MCP test server")
        assert self.proc.process.poll() is None, self.proc.output()
        return self

    def sent(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def mcp_server(tmp_path, settings):
    settings.WEBHOOK_ALLOW_HTTP = True  # development: a receiver on loopback over http
    server = RunningServer(tmp_path).start(tmp_path)
    yield server
    server.proc.stop()


def script_model(messages, info):
    """Calls the MCP tools in order: lookup with bad arguments, lookup, send, explode; then answers with what
    the tools said."""
    returns = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    plan = [("mcp:test.lookup", {"key": 42}), ("mcp:test.lookup", {"key": "ACME-042"}),
            ("mcp:test.send", {"to": "cs@acme.example", "text": "Renewal ready"}), ("mcp:test.explode", {})]
    if len(returns) < len(plan):
        tool, args = plan[len(returns)]
        return ModelResponse(parts=[ToolCallPart(tool_name=tool, args=args, tool_call_id=f"call_{len(returns) + 1}")])
    return ModelResponse(parts=[TextPart(" | ".join(str(r.content)[:300] for r in returns))])


@pytest.fixture
def script_provider():
    register_model_provider("mcpscript", lambda name: FunctionModel(script_model, model_name="mcp-script"),
                            models=("steps",))
    yield "mcpscript:steps"
    MODEL_PROVIDERS.pop("mcpscript"), PROVIDER_MODELS.pop("mcpscript")


def connect(cast, mcp_server, **extra):
    server = server_add(tenant=cast.acme, actor=cast.admin, name="test", url=mcp_server.url,
                        bearer="s3cret-token", **extra)
    diff = server_test(server=server, actor=cast.admin)
    assert diff["first"]
    return server


def test_an_admin_connects_a_server_whose_secret_is_sealed_and_never_shown(cast, client_for, mcp_server):
    client = client_for(cast.admin)
    client.post(reverse("admin_mcp_servers", args=["acme"]), {
        "name": "test", "url": mcp_server.url, "bearer": "s3cret-token", "headers": "X-Team: renewals"})
    server = McpServer.objects.get(tenant=cast.acme)
    assert "s3cret-token" not in server.secret and server.secret_hint == "Authorization, X-Team"
    assert unseal(server.secret)["headers"] == {"Authorization": "Bearer s3cret-token", "X-Team": "renewals"}
    page = client.post(reverse("admin_mcp_action", args=["acme", server.pk, "test"]), follow=True).content.decode()
    assert "Connected" in page and "s3cret" not in page
    tools = {t.name: t for t in McpTool.objects.filter(server=server)}
    assert set(tools) >= {"lookup", "send", "explode", "grow"}
    assert tools["lookup"].risk is None and tools["lookup"].effective_risk == 3 and tools["lookup"].suggested_risk == 0
    assert "mcp:test.lookup" in page and "(suggested)" in page
    listing = client.get(reverse("admin_mcp_servers", args=["acme"])).content.decode()
    assert "s3cret" not in listing and "set (Authorization, X-Team)" in listing
    # the bearer reaches the server with each call
    assert tool_for(cast.acme, "mcp:test.lookup").function(
        ToolContext(tenant=cast.acme, run=None, idempotency_key="k"), JsonArguments(key="A"))["authorized"] is True
    assert AuditEvent.objects.filter(verb="mcp_server.added", target="test").exists()
    assert "s3cret" not in json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))


def test_urls_inside_the_network_are_refused(cast, client_for, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    for url in ["http://mcp.example.com/mcp", "https://127.0.0.1/mcp", "https://10.0.0.5/mcp", "https://localhost/m"]:
        page = client_for(cast.admin).post(reverse("admin_mcp_servers", args=["acme"]), {"name": "x", "url": url})
        assert 'class="error"' in page.content.decode(), url
    assert not McpServer.objects.exists()


def test_a_run_uses_governed_mcp_tools(cast, mcp_server, script_provider):
    server = connect(cast, mcp_server)
    tool_classify(tool=server.tools.get(name="lookup"), risk=0, actor=cast.admin)  # read-only; send stays at 3
    tool_classify(tool=server.tools.get(name="explode"), risk=1, actor=cast.admin)
    agent = Agent.objects.create(tenant=cast.acme, name="Caller", slug="caller", instructions="Use the tools.",
                                 model=script_provider, plan_mode=False,
                                 tools=["mcp:test.lookup", "mcp:test.send", "mcp:test.explode"])
    run = advance(run_start(tenant=cast.acme, agent=agent, goal="Tell ACME", requested_by=cast.member))
    assert run.status == "waiting_for_human"
    request = run.approval_requests.get()
    assert (request.tool, request.risk) == ("mcp:test.send", 3) and mcp_server.sent() == []
    first = ToolInvocation.objects.filter(run=run, tool="mcp:test.lookup").order_by("id").first()
    assert first.status == "error" and first.result["error_type"] == "invalid_arguments"
    assert "'key': 42 is not of type 'string'" in first.result["message"]  # in words the model can act on
    approval_decide(approval=request, approve=True, actor=cast.reviewer)
    run = advance(run)
    assert run.status == "completed", run.terminal_reason
    [sent] = mcp_server.sent()
    invocation = ToolInvocation.objects.get(run=run, tool="mcp:test.send")
    assert sent["to"] == "cs@acme.example" and sent["idempotency_key"] == invocation.idempotency_key
    assert ToolInvocation.objects.get(run=run, tool="mcp:test.explode").status == "error"
    assert "the warehouse is on fire" in run.answer and "Account ACME-042" in run.answer


def test_a_server_that_is_down_gives_a_tool_error_then_opens_the_breaker(cast, mcp_server):
    connect(cast, mcp_server)
    spec = tool_for(cast.acme, "mcp:test.lookup")
    context = ToolContext(tenant=cast.acme, run=None, idempotency_key="k")
    mcp_server.proc.stop()
    for _ in range(2):  # each call tried twice, then a tool error the model can act on
        with pytest.raises(ToolError, match="could not be called: The MCP server cannot be reached") as failed:
            spec.function(context, JsonArguments(key="A"))
        assert failed.value.retryable and failed.value.error_type == "tool_unavailable"
    with pytest.raises(ToolError, match="is down"):
        spec.function(context, JsonArguments(key="A"))
    with pytest.raises(McpUnavailable):
        server_test(server=McpServer.objects.get(name="test"))
    assert McpServer.objects.get(name="test").status == "down"


def test_a_changed_tool_list_is_shown_as_a_diff_to_accept(cast, client_for, mcp_server):
    server = connect(cast, mcp_server)
    call_tool(Connection("http", url=mcp_server.url), "grow", {}, idempotency_key="g", timeout=5)
    diff = server_test(server=server, actor=cast.admin)
    assert diff["added"] == ["grown"] and not diff["first"]
    assert tool_for(cast.acme, "mcp:test.grown") is None  # not in use before an admin accepts it
    page = client_for(cast.admin).get(reverse("admin_mcp_server", args=["acme", server.pk])).content.decode()
    assert "Accept the new tool list" in page and "grown" in page
    client_for(cast.admin).post(reverse("admin_mcp_action", args=["acme", server.pk, "accept"]))
    assert McpTool.objects.get(server=server, name="grown").risk is None
    assert tool_for(cast.acme, "mcp:test.grown").risk == 3
    assert AuditEvent.objects.filter(verb="mcp_server.tools_accepted").exists()


def test_stdio_servers_come_only_from_the_operators_list(cast, settings, tmp_path):
    settings.MCP_STDIO_SERVERS = {"local": [sys.executable, str(SERVER_SCRIPT), "stdio", str(tmp_path / "s.jsonl")]}
    server = server_add(tenant=cast.acme, actor=cast.admin, name="local", stdio_name="local")
    assert server_test(server=server)["first"]
    assert tool_for(cast.acme, "mcp:local.lookup") is not None
    from mcp_servers.services import ServerRefused

    with pytest.raises(ServerRefused, match="operator's list"):
        server_add(tenant=cast.acme, actor=cast.admin, name="mine", stdio_name="rm -rf /")


def test_another_tenants_tools_are_not_mine(cast, mcp_server):
    connect(cast, mcp_server)
    assert tool_for(cast.globex, "mcp:test.lookup") is None


def test_mcp_pages_check_tenant_and_role(cast, client_for, mcp_server):
    server = connect(cast, mcp_server)
    tool = server.tools.get(name="send")
    for url in [reverse("admin_mcp_servers", args=["acme"]), reverse("admin_mcp_server", args=["acme", server.pk])]:
        assert client_for(cast.outsider).get(url).status_code == 404
        assert client_for(cast.reviewer).get(url).status_code == 403
        assert client_for(cast.admin).get(url).status_code == 200
    for url in [reverse("admin_mcp_action", args=["acme", server.pk, "test"]),
                reverse("admin_mcp_tool_risk", args=["acme", server.pk, tool.pk])]:
        assert client_for(cast.outsider).post(url, {"risk": "0"}).status_code == 404
        assert client_for(cast.member).post(url, {"risk": "0"}).status_code == 403
    assert McpTool.objects.get(pk=tool.pk).risk is None


def test_the_api_adds_tests_and_classifies_without_returning_secrets(cast, client, mcp_server):
    from console.services import api_token_create

    secret = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "content_type": "application/json"}
    made = client.post("/api/v1/mcp-servers", {"name": "test", "url": mcp_server.url, "bearer": "s3cret-token"}, **auth)
    assert made.status_code == 201 and "s3cret" not in made.content.decode()
    tested = client.post(f"/api/v1/mcp-servers/{made.json()['id']}/test", **auth).json()
    assert {t["name"] for t in tested["tools"]} >= {"mcp:test.lookup", "mcp:test.send"}
    classified = client.put(f"/api/v1/mcp-servers/{made.json()['id']}/tools/lookup/risk", {"risk": 0}, **auth)
    assert classified.json()["risk"] == 0 and classified.json()["classified"] is True
    assert "s3cret" not in client.get("/api/v1/mcp-servers", **auth).content.decode()
    assert client.delete(f"/api/v1/mcp-servers/{made.json()['id']}", **auth).status_code == 204


def test_secrets_survive_a_key_rotation(cast, settings, mcp_server):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    server = server_add(tenant=cast.acme, actor=cast.admin, name="test", url=mcp_server.url, bearer="s3cret-token")
    old = server.secret
    settings.SECRETS_KEYS = [Fernet.generate_key().decode(), *settings.SECRETS_KEYS]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "Re-encrypted 1 secret" in out.getvalue()
    server.refresh_from_db()
    assert server.secret != old
    settings.SECRETS_KEYS = settings.SECRETS_KEYS[:1]  # the old key gone: still readable
    assert unseal(server.secret)["headers"]["Authorization"] == "Bearer s3cret-token"
