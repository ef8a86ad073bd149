"""The tools page: the registry with each tool's governance, schema, agents and use; admins raise a tool's risk in
their tenant, never below the declared one; every change audited; the step governs calls by the raised risk."""

from django.urls import reverse

from agents.models import ToolInvocation, ToolSetting
from agents.services import run_start
from console.models import AuditEvent, Tenant
from console.services import api_token_create
from tests.factories import advance, make_looper


def test_the_page_shows_each_tool_with_its_schema_agents_and_use(cast, client_for, renewals):
    run = run_start(tenant=cast.acme, agent=renewals, goal="Renew", requested_by=cast.member)
    for step, (status, ms) in enumerate([("ok", 10), ("error", 30), ("ok", 20)]):
        ToolInvocation.objects.create(tenant=cast.acme, run=run, step=step, call_id=f"c{step}", tool="crm.get_account",
                                      idempotency_key=f"k{step}", status=status, duration_ms=ms)
    page = client_for(cast.admin).get(reverse("admin_tools", args=["acme"])).content.decode()
    row = page.split('id="tool-crm.get_account"')[1].split("</tr>")[0]
    assert "Renewals assistant" in row and "<td>3</td>" in row and "<td>1</td>" in row and "20 ms" in row
    assert "Arguments of crm.get_account" in page and "<code>account_key</code>" in page.split(
        "Arguments of crm.get_account")[1]
    send = page.split('id="tool-email.send"')[1].split("</select>")[0]
    assert 'value="2"' not in send and 'value="3" selected' in send  # nothing below the declared risk is offered


def test_an_admin_raises_a_risk_never_below_the_declared_one_and_it_is_audited(cast, client_for):
    client, url = client_for(cast.admin), reverse("admin_tool_risk", args=["acme", "email.draft"])
    version = Tenant.objects.get(pk=cast.acme.pk).config_version
    client.post(url, {"risk": "4"})
    assert ToolSetting.objects.get(tenant=cast.acme, tool="email.draft").risk == 4
    assert Tenant.objects.get(pk=cast.acme.pk).config_version > version
    refused = client.post(url, {"risk": "1"}, follow=True).content.decode()
    assert "declared at risk 2; it can be raised, never set below that" in refused
    assert ToolSetting.objects.get(tool="email.draft").risk == 4
    client.post(url, {"risk": "2"})  # back to the declared risk: the tenant's own setting goes
    assert not ToolSetting.objects.exists()
    assert list(AuditEvent.objects.filter(verb="tool.risk_changed").order_by("id").values_list("data", flat=True)) == [
        {"from": 2, "to": 4, "declared": 2}, {"from": 4, "to": 2, "declared": 2}]
    assert client.post(reverse("admin_tool_risk", args=["acme", "shell.exec"]), {"risk": "4"}).status_code == 404
    assert b"from 0 to 4" in client.post(url, {"risk": "x"}, follow=True).content


def test_a_raised_risk_makes_the_step_ask_a_person(cast, client_for):
    looper = make_looper(cast.acme)
    client_for(cast.admin).post(reverse("admin_tool_risk", args=["acme", "noop"]), {"risk": "3"})
    run = advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 1 times", requested_by=cast.member))
    assert run.status == "waiting_for_human"
    request = run.approval_requests.get()
    assert (request.tool, request.risk) == ("noop", 3)
    other = advance(run_start(tenant=cast.globex, agent=make_looper(cast.globex), goal="Call noop 1 times",
                              requested_by=cast.outsider))
    assert other.status == "completed"  # another tenant's setting is its own


def test_the_tools_api(cast, client):
    secret = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "content_type": "application/json"}
    tools = {t["name"]: t for t in client.get("/api/v1/tools", **auth).json()}
    assert tools["email.send"]["declared_risk"] == 3 and "properties" in tools["email.send"]["arguments_schema"]
    raised = client.put("/api/v1/tools/email.draft/risk", {"risk": 3}, **auth)
    assert raised.json()["risk"] == 3 and raised.json()["declared_risk"] == 2
    below = client.put("/api/v1/tools/email.send/risk", {"risk": 1}, **auth)
    assert below.status_code == 422 and "never set below" in below.json()["message"]
    assert client.put("/api/v1/tools/nope/risk", {"risk": 1}, **auth).status_code == 404
    reviewer = api_token_create(tenant=cast.acme, name="r", actor=cast.reviewer).secret
    assert client.get("/api/v1/tools", HTTP_AUTHORIZATION=f"Bearer {reviewer}").status_code == 403


def test_the_risk_endpoint_checks_tenant_and_role(cast, client_for):
    url = reverse("admin_tool_risk", args=["acme", "noop"])
    assert client_for(cast.outsider).post(url, {"risk": "3"}).status_code == 404
    assert client_for(cast.reviewer).post(url, {"risk": "3"}).status_code == 403
    assert not ToolSetting.objects.exists()
