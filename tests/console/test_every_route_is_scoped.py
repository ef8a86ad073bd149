"""Every route, found by walking the URL resolver and the API's schema rather than listed by hand, refuses
what is not its caller's: a person outside the tenant gets 404 on every console URL (GET and POST), a person
who is an admin of another tenant gets 404 when they name this tenant's objects under their own tenant, and
another tenant's API token gets 404 for every object of this tenant. A new route that takes an object the
walk cannot fill fails here until it is added to ``ObjectIds``."""

import json
import re
from dataclasses import dataclass
from datetime import date

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from agents.services import run_start
from approvals.models import ApprovalPolicy, ApprovalRequest
from console.models import Membership, Role
from console.services import api_token_create, invitation_create
from costs.models import Budget, PriceRule, Reconciliation, RepricingJob
from mcp_servers.models import McpServer, McpTool
from memory.services import memory_create
from tests.factories import make_looper, make_trace
from traces.models import ReplayBatch, Span
from webhooks.models import Delivery, RunWebhook

SECRET_TEXT = "zq-acme-only-7731"  # in acme's objects; must never reach another tenant's caller


@dataclass
class ObjectIds:
    """Acme's objects, one of each kind a route can name."""

    values: dict

    def kwargs_for(self, route: str, names: list[str]) -> dict:
        missing = [name for name in names if name not in self.values]
        assert not missing, f"{route}: add an acme object for {missing} to the walk in {__name__}"
        return {name: self.values[name] for name in names}


@pytest.fixture
def acme_objects(cast) -> ObjectIds:
    acme = cast.acme
    agent = make_looper(acme, description=SECRET_TEXT)
    run = run_start(tenant=acme, agent=agent, goal=f"Call noop 3 times {SECRET_TEXT}", requested_by=cast.member)
    run.status, run.finished_at = "completed", timezone.now()
    run.save(update_fields=["status", "finished_at"])
    make_trace(run, 10)
    approval = ApprovalRequest.objects.create(tenant=acme, run=run, step=1, call_id="c1", tool="noop",
                                              arguments={"note": SECRET_TEXT}, risk=3, policy="p")
    record = memory_create(tenant=acme, actor=cast.admin, scope="tenant", type="fact", content=SECRET_TEXT)
    server = McpServer.objects.create(tenant=acme, name="acmecrm", url="https://crm.example.com/mcp")
    mcp_tool = McpTool.objects.create(tenant=acme, server=server, name="lookup")
    webhook = RunWebhook.objects.create(tenant=acme, url="https://hooks.example.com/acme", secret="s")
    delivery = Delivery.objects.create(tenant=acme, webhook=webhook, run=run, event="run.completed", payload={})
    target = Membership.objects.get(tenant=acme, user=cast.member)
    invitation = invitation_create(tenant=acme, email="new@example.com", role=Role.MEMBER, actor=cast.admin)
    token = api_token_create(tenant=acme, name="acme-token", actor=cast.admin)
    return ObjectIds({
        "run_number": run.number,
        "action": "cancel",
        "agent_slug": agent.slug,
        "version": agent.version,
        "approval_id": approval.pk,
        "record_id": record.pk,
        "fmt": "json",
        "span_id": Span.objects.filter(run=run).values_list("pk", flat=True).first(),
        "batch_id": ReplayBatch.objects.create(tenant=acme, agent=agent, runs_wanted=1, model="demo:noop").pk,
        "budget_id": Budget.objects.create(tenant=acme, name=SECRET_TEXT, limit_usd=1).pk,
        "rule_id": PriceRule.objects.create(tenant=acme, provider="openai", model="gpt-4o",
                                            effective_from=date(2026, 1, 1)).pk,
        "job_id": RepricingJob.objects.create(tenant=acme, first_day=date(2026, 1, 1), last_day=date(2026, 1, 2)).pk,
        "reconciliation_id": Reconciliation.objects.create(tenant=acme, provider="openai", filename=SECRET_TEXT).pk,
        "membership_id": target.pk,
        "invitation_id": invitation.invitation.pk,
        "policy_id": ApprovalPolicy.objects.create(tenant=acme, name=SECRET_TEXT).pk,
        "tool_name": "noop",
        "server_id": server.pk,
        "tool_id": mcp_tool.pk,
        "webhook_id": webhook.pk,
        "delivery_id": delivery.pk,
        "token_id": token.token.pk,
        # the API's names for the same objects
        "number": run.number,
        "slug": agent.slug,
        "memory_id": record.pk,
    })


def tenant_routes() -> list[tuple[str, str]]:
    """(route, url name) of every console URL under /t/<tenant>/."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                route = prefix + str(pattern.pattern)
                if route.startswith("t/<slug:tenant_slug>/"):
                    found.append((route, pattern.name))

    walk(get_resolver().url_patterns)
    return found


TENANT_ROUTES = tenant_routes()


def url_for(name: str, route: str, tenant_slug: str, objects: ObjectIds) -> str:
    names = [n for n in re.findall(r"<(?:\w+:)?(\w+)>", route) if n != "tenant_slug"]
    return reverse(name, kwargs={"tenant_slug": tenant_slug, **objects.kwargs_for(route, names)})


def refused_statuses(client, url: str, *, leaks: tuple[bytes, ...]) -> list[int]:
    """GET and POST ``url``: each is 404, or 405 for the method the route does not take; nothing leaks."""
    statuses = []
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code in (404, 405), f"{method.__name__.upper()} {url}: {response.status_code}"
        assert not any(leak in response.content for leak in leaks), f"{method.__name__.upper()} {url} leaks"
        statuses.append(response.status_code)
    return statuses


def test_the_walk_finds_every_section():
    names = {name for _, name in TENANT_ROUTES}
    assert {"run_detail", "approval_detail", "memory_detail", "trace_span", "costs_budget", "admin_mcp_server",
            "admin_webhook_remove", "agent_edit"} <= names
    assert len(TENANT_ROUTES) > 50


@pytest.mark.parametrize("route,name", TENANT_ROUTES, ids=[name for _, name in TENANT_ROUTES])
def test_a_person_outside_the_tenant_gets_404_for_get_and_post(cast, client_for, acme_objects, route, name):
    client = client_for(cast.outsider)
    url = url_for(name, route, "acme", acme_objects)
    statuses = refused_statuses(client, url, leaks=(SECRET_TEXT.encode(), b"Acme"))
    assert 404 in statuses, f"{url}: {statuses}"


OWN_TENANT_ONLY = {"tenant_home", "runs", "agents", "agent_new", "demo_systems", "approvals", "memory", "memory_badge",
                   "memory_capture", "memory_export", "traces", "trace_batch_create", "costs", "costs_runs",
                   "costs_ledger_csv", "costs_budgets", "costs_pricing", "costs_reconciliation", "admin_members",
                   "admin_audit", "approval_policies", "approval_webhook", "admin_tools", "admin_tool_risk",
                   "admin_mcp_servers", "admin_webhooks", "memory_admin", "admin_tokens"}
OBJECT_ROUTES = [(route, name) for route, name in TENANT_ROUTES if name not in OWN_TENANT_ONLY]


@pytest.mark.parametrize("route,name", OBJECT_ROUTES, ids=[name for _, name in OBJECT_ROUTES])
def test_another_tenants_admin_naming_acme_objects_under_their_own_tenant_gets_404(cast, acme_objects, route, name):
    """sam is an admin of globex (and a reviewer of acme): under /t/globex/ acme's ids are not there."""
    client = Client()
    client.force_login(cast.both)
    url = url_for(name, route, "globex", acme_objects)
    statuses = refused_statuses(client, url, leaks=(SECRET_TEXT.encode(),))
    assert 404 in statuses, f"{url}: {statuses}"


# Named by what every tenant has (a built-in tool's name), not by an object of one tenant.
TENANT_NAMED = {"/api/v1/tools/{name}/risk"}


def api_operations() -> list[tuple[str, str]]:
    """(method, path template) of every API operation that names an object in its path."""
    from console.api import api

    schema = api.get_openapi_schema()
    return sorted((method.upper(), path) for path, operations in schema["paths"].items() if "{" in path
                  and path not in TENANT_NAMED for method in operations)



API_OPERATIONS = api_operations()
# (method, path) → a valid body, so that the lookup is what refuses, not the validation
VALID_BODIES = {
    ("POST", "/api/v1/approvals/{approval_id}/decisions"): {"decision": "approve"},
    ("PUT", "/api/v1/approvals/{approval_id}/assignee"): {"assignee": None},
    ("POST", "/api/v1/memories/{memory_id}/corrections"): {"content": "changed"},
    ("PUT", "/api/v1/memories/{memory_id}/pin"): {"pinned": True},
    ("POST", "/api/v1/runs/{number}/messages"): {"text": "hello"},
    ("PUT", "/api/v1/agents/{slug}/enabled"): {"enabled": False},
    ("PUT", "/api/v1/costs/budgets/{budget_id}"): {"name": "taken over", "limit_usd": "1"},
    ("PUT", "/api/v1/costs/price-rules/{rule_id}"): {"provider": "openai", "model": "gpt-4o", "effective_from": "2026-01-01"},
    ("PUT", "/api/v1/mcp-servers/{server_id}/tools/{tool_name}/risk"): {"risk": 1},
    ("PUT", "/api/v1/members/{membership_id}/role"): {"role": "admin"},
}


@pytest.mark.parametrize("method,path", API_OPERATIONS, ids=[f"{m} {p}" for m, p in API_OPERATIONS])
def test_another_tenants_api_token_gets_404_for_acme_objects(cast, acme_objects, method, path):
    issued = api_token_create(tenant=cast.globex, name="globex-admin", actor=cast.both)  # sam: globex admin
    names = re.findall(r"{(\w+)}", path)
    values = acme_objects.kwargs_for(path, names)
    url = re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path)
    body = VALID_BODIES.get((method, path), {})
    response = Client().generic(method, url, data=json.dumps(body), content_type="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 404, f"{method} {url}: {response.status_code} {response.content[:200]!r}"
    assert SECRET_TEXT.encode() not in response.content
