"""Admins create, edit, disable agents; every save a new version with its diff; runs keep their version; a run on
any version; members see agents read-only."""

import pytest
from django.urls import reverse

from agents.models import Agent, Run
from agents.services import run_start
from console.models import AuditEvent
from console.services import api_token_create
from tests.factories import advance

FORM = {"name": "Triage", "slug": "", "description": "Sorts the inbox", "instructions": "Read and sort.",
        "model": "demo:noop", "fallback_models": "demo:planner", "tools": ["noop", "crm.search_accounts"],
        "max_steps": "10", "max_tokens": "50000", "max_cost_usd": "1.5", "max_seconds": "600",
        "plan_mode": "", "memory_recall": "on"}


def test_an_admin_creates_an_agent_that_members_see_read_only(cast, client_for):
    response = client_for(cast.admin).post(reverse("agent_new", args=["acme"]), FORM)
    assert response.status_code == 302 and response.url == "/t/acme/agents/triage/"
    agent = Agent.objects.get(tenant=cast.acme, slug="triage")
    assert (agent.version, agent.fallback_models, agent.memory) == (1, ["demo:planner"], {"recall": True,
                                                                                         "remember": False})
    assert agent.versions.get().config["tools"] == ["noop", "crm.search_accounts"]
    member = client_for(cast.member)
    listing = member.get(reverse("agents", args=["acme"])).content.decode()
    assert "Triage" in listing and "New agent" not in listing
    page = member.get(reverse("agent_detail", args=["acme", "triage"])).content.decode()
    assert "demo:noop" in page and "Edit" not in page and "Run version" not in page
    assert member.get(reverse("agent_edit", args=["acme", "triage"])).status_code == 403
    assert member.post(reverse("agent_new", args=["acme"]), FORM).status_code == 403
    assert AuditEvent.objects.filter(verb="agent.created", target="agent triage").exists()


def test_bad_configuration_is_refused_with_what_to_fix(cast, client_for):
    page = client_for(cast.admin).post(reverse("agent_new", args=["acme"]), {
        **FORM, "model": "nowhere:gpt", "fallback_models": "demo:nonesuch", "tools": ["noop"], "max_steps": "0"})
    text = page.content.decode()
    assert page.status_code == 200
    assert "The provider &#x27;nowhere&#x27; is not configured here" in text
    assert "has no model &#x27;nonesuch&#x27;" in text and "from 1 to 1,000" in text
    assert not Agent.objects.filter(slug="triage").exists()


def test_an_edit_is_a_new_version_with_its_diff_and_the_runs_of_each_version(cast, client_for, renewals):
    admin = client_for(cast.admin)
    first = run_start(tenant=cast.acme, agent=renewals, goal="Renew ACME-042", requested_by=cast.member)
    edit = admin.get(reverse("agent_edit", args=["acme", "renewals"])).content.decode()
    assert "Saving a change makes version 2" in edit
    from agents.forms import AgentForm

    values = AgentForm.initial_for(renewals)
    form = {k: v for k, v in values.items() if not isinstance(v, bool)} | {k: "on" for k, v in values.items() if v is True}
    form["instructions"] = renewals.instructions + "\nAlways be brief."
    form["max_steps"] = 12
    assert admin.post(reverse("agent_edit", args=["acme", "renewals"]), form).status_code == 302
    renewals.refresh_from_db()
    assert renewals.version == 2
    second = run_start(tenant=cast.acme, agent=renewals, goal="Renew ACME-043", requested_by=cast.member)
    page = admin.get(reverse("agent_detail", args=["acme", "renewals"])).content.decode()
    assert "+Always be brief." in page and "max_steps: <del>30</del> → <ins>12</ins>" in page
    v2, v1 = page.split('id="v2"')[1].split('id="v1"')
    assert f"#{second.number}</a>" in v2 and f"#{first.number}</a>" in v1 and f"#{first.number}</a>" not in v2


def test_a_running_run_keeps_its_version_and_a_run_can_start_on_an_earlier_one(cast, client_for, renewals):
    from agents.services import agent_update

    running = advance(run_start(tenant=cast.acme, agent=renewals, goal="Renew ACME-042", requested_by=cast.member),
                      until=("planned",))
    agent_update(agent=renewals, actor=cast.admin, model="demo:noop", max_steps=3)
    running = advance(running)
    assert running.agent_version == 1
    assert running.model_calls.exclude(model__icontains="planner").count() == 0  # v1's model all along
    response = client_for(cast.admin).post(reverse("agent_version_run", args=["acme", "renewals", 1]),
                                           {"goal": "Renew ACME-042 again"})
    rerun = Run.objects.get(tenant=cast.acme, goal="Renew ACME-042 again")
    assert response.url == f"/t/acme/runs/{rerun.number}/" and rerun.agent_version == 1
    assert rerun.events.get(type="run.created").payload["model"] == "demo:planner"
    missing = client_for(cast.admin).post(reverse("agent_version_run", args=["acme", "renewals", 9]), {"goal": "x"},
                                          follow=True)
    assert b"has no version 9" in missing.content


def test_a_disabled_agent_starts_no_runs_but_running_ones_finish(cast, client_for, renewals):
    running = run_start(tenant=cast.acme, agent=renewals, goal="Renew ACME-042", requested_by=cast.member)
    client_for(cast.admin).post(reverse("agent_enabled", args=["acme", "renewals"]), {"enabled": "0"})
    renewals.refresh_from_db()
    assert not renewals.enabled
    runs_page = client_for(cast.member).get(reverse("runs", args=["acme"])).content.decode()
    assert f'value="{renewals.pk}"' not in runs_page
    refused = client_for(cast.member).post(reverse("runs", args=["acme"]), {"agent": renewals.pk, "goal": "x"})
    assert refused.status_code == 200 and Run.objects.count() == 1
    assert advance(running).status in ("waiting_for_human", "completed")
    assert AuditEvent.objects.filter(verb="agent.disabled").exists()


class TestAgentsApi:
    def call(self, client, method, path, secret, **kwargs):
        return getattr(client, method)("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {secret}",
                                       content_type="application/json", **kwargs)

    def test_read_create_change_and_disable(self, cast, client, renewals):
        secret = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
        assert "renewals" in [a["slug"] for a in self.call(client, "get", "/agents", secret).json()]
        made = self.call(client, "post", "/agents", secret, data={"name": "Looper", "instructions": "Call noop.",
                                                                   "model": "demo:noop", "tools": ["noop"]})
        assert made.status_code == 201 and made.json()["version"] == 1
        changed = self.call(client, "patch", "/agents/looper", secret, data={"max_steps": 5,
                                                                             "memory": {"recall": True}})
        assert changed.json()["version"] == 2 and changed.json()["memory"] == {"recall": True, "remember": False}
        versions = self.call(client, "get", "/agents/looper/versions", secret).json()
        assert [v["version"] for v in versions] == [2, 1] and versions[0]["config"]["max_steps"] == 5
        bad = self.call(client, "patch", "/agents/looper", secret, data={"model": "nowhere:x"})
        assert bad.status_code == 422 and "not configured" in bad.json()["message"]
        assert self.call(client, "put", "/agents/looper/enabled", secret, data={"enabled": False}).json()[
            "enabled"] is False
        refused = self.call(client, "post", "/runs", secret, data={"agent": "looper", "goal": "go"})
        assert refused.status_code == 422 and "disabled" in refused.json()["message"]
        on_v1 = self.call(client, "post", "/runs", secret, data={"agent": "renewals", "goal": "go", "version": 1})
        assert on_v1.status_code == 201 and on_v1.json()["agent_version"] == 1

    def test_a_member_reads_agents_but_cannot_change_them(self, cast, client, renewals):
        secret = api_token_create(tenant=cast.acme, name="mine", actor=cast.member).secret
        assert self.call(client, "get", "/agents/renewals", secret).status_code == 200
        response = self.call(client, "patch", "/agents/renewals", secret, data={"max_steps": 5})
        assert response.status_code == 403 and "cannot open admin" in response.json()["message"]
        globex = api_token_create(tenant=cast.globex, name="g", actor=cast.outsider).secret
        assert self.call(client, "get", "/agents/renewals", globex).status_code == 404


@pytest.mark.parametrize("name,args,allowed", [
    ("agent_detail", ["renewals"], {"admin", "reviewer", "finance", "member"}),
    ("agent_edit", ["renewals"], {"admin"}),
])
def test_agent_pages_check_tenant_and_role(cast, client_for, renewals, name, args, allowed):
    from tests.console.test_access import ROLES, user_with_role

    url = reverse(name, args=["acme", *args])
    assert client_for(cast.outsider).get(url).status_code == 404
    for role in ROLES:
        assert client_for(user_with_role(cast, role)).get(url).status_code == (200 if role in allowed else 403), role
    for post in ("agent_enabled", "agent_version_run"):
        url = reverse(post, args=["acme", "renewals", *([1] if post == "agent_version_run" else [])])
        assert client_for(cast.outsider).post(url, {"goal": "x"}).status_code == 404
        assert client_for(cast.member).post(url, {"goal": "x"}).status_code == 403
