"""The runs list: search, filters (status, agent, requester), keyset pages; the goal box shows an example."""

from agents.models import Agent
from agents.selectors import RUNS_PAGE
from agents.services import run_start


def start(cast, agent, goal, by):
    return run_start(tenant=cast.acme, agent=agent, goal=goal, requested_by=by)


def test_search_and_filters_narrow_the_list(cast, client_for, renewals):
    reviewed = Agent.objects.get(tenant=cast.acme, slug="renewals-reviewed")
    start(cast, renewals, "Renew ACME-042", cast.member)
    start(cast, reviewed, "Renew GLOBO-7", cast.reviewer)
    client = client_for(cast.member)
    assert "Renew GLOBO-7" not in client.get("/t/acme/runs/?q=acme-042").text
    assert "Renew ACME-042" in client.get("/t/acme/runs/?q=acme-042").text
    by_agent = client.get("/t/acme/runs/?agent=renewals-reviewed").text
    assert "Renew GLOBO-7" in by_agent and "Renew ACME-042" not in by_agent
    by_requester = client.get("/t/acme/runs/?requester=max").text
    assert "Renew ACME-042" in by_requester and "Renew GLOBO-7" not in by_requester
    none = client.get("/t/acme/runs/?status=failed").text
    assert "No runs match these filters." in none
    assert 'data-live-list="/ws/t/acme/runs/?q=acme-042"' in client.get("/t/acme/runs/?q=acme-042").text


def test_older_runs_come_a_page_at_a_time(cast, client_for, renewals):
    for i in range(RUNS_PAGE + 3):
        start(cast, renewals, f"Goal number {i + 1}", cast.member)
    client = client_for(cast.member)
    first = client.get("/t/acme/runs/").text
    assert f"Goal number {RUNS_PAGE + 3}<" in first and ">Goal number 3<" not in first
    assert 'before=4"' in first
    older = client.get("/t/acme/runs/?before=4", HTTP_HX_REQUEST="true").text
    assert "<html" not in older and [f">Goal number {n}<" in older for n in (1, 2, 3)] == [True] * 3
    assert "Older runs" not in older


def test_the_goal_box_shows_an_example(cast, client_for, renewals):
    page = client_for(cast.member).get("/t/acme/runs/").text
    assert 'placeholder="e.g. Prepare the renewal plan for account ACME-042' in page


def test_an_admin_is_told_the_policy_was_saved(cast, client_for):
    response = client_for(cast.admin).post("/t/acme/admin/policies/", {
        "name": "Invoices", "tool": "", "min_risk": 4, "required_approvals": 2, "sla_minutes": 60,
        "expire_minutes": 120, "expiry_outcome": "reject", "escalate_to_role": "admin", "enabled": "on"}, follow=True)
    assert "Policy “Invoices” added. It applies to requests made from now on." in response.text
