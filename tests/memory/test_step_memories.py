"""The "Memories used" panel: per step, which memories the agent was given (content read now, type, scope,
score, rank, the version used, linked) and what became of the step's proposals; on the run page and on the
approval detail (the reviewer sees why the agent believed something), never showing a viewer a memory they may
not see."""

import pytest
from django.urls import reverse

from agents.services import run_start
from memory import services
from tests.factories import advance

PREFERENCE = "Max prefers a short bullet summary at the top of renewal emails."


@pytest.fixture
def waiting_run(cast, renewals):
    """Max's renewal run that used his own preference and now waits for a reviewer to approve email.send."""
    preference = services.memory_create(tenant=cast.acme, actor=None, content=PREFERENCE, scope="user",
                                        user=cast.member, type="preference", subject="email format")
    tenant_fact = services.memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact",
                                         content="Renewal emails for ACME-042 go to the champion, Dana Lee.",
                                         subject="ACME-042 champion")
    run = run_start(tenant=cast.acme, agent=renewals, goal="Prepare the renewal plan for ACME-042 and email it",
                    requested_by=cast.member)
    run = advance(run, until=("completed", "failed", "waiting_for_human"))
    assert run.status == "waiting_for_human", run.terminal_reason
    return run, preference, tenant_fact


def _panel(client, run, step=None, **extra):
    url = reverse("run_memories", args=["acme", run.number]) + (f"?step={step}" if step is not None else "")
    return client.get(url, HTTP_HX_REQUEST="true", **extra)


def test_the_run_page_shows_each_steps_memories_with_their_text_version_score_and_rank(cast, client_for, waiting_run):
    run, preference, fact = waiting_run
    client = client_for(cast.member)
    page = client.get(reverse("run_detail", args=["acme", run.number])).content.decode()
    assert "Memories used" in page and reverse("run_memories", args=["acme", run.number]) in page
    panel = _panel(client, run).content.decode()
    assert "Step 1" in panel and PREFERENCE in panel and "Dana Lee" in panel
    assert "preference" in panel and "user" in panel and "score 0." in panel
    assert f'{reverse("memory_detail", args=["acme", preference.pk])}#memory-v1' in panel
    assert f"memory #{preference.pk} v1" in panel


def test_the_reviewer_sees_which_memories_the_step_used_but_not_the_requesters_own(cast, client_for, waiting_run):
    run, preference, fact = waiting_run
    approval = run.approval_requests.get()
    detail = client_for(cast.reviewer).get(reverse("approval_detail", args=["acme", approval.pk]),
                                           HTTP_HX_REQUEST="true").content.decode()
    assert "Memories the agent used in step" in detail
    assert f'{reverse("run_memories", args=["acme", run.number])}?step={approval.step}' in detail
    panel = _panel(client_for(cast.reviewer), run, step=approval.step).content.decode()
    # Rita may see the tenant's fact, not Max's own preference: that one is only "a memory you cannot see".
    assert "Dana Lee" in panel and "a memory you cannot see" in panel
    assert PREFERENCE not in panel and "bullet" not in panel and "email format" not in panel
    assert reverse("memory_detail", args=["acme", preference.pk]) not in panel
    # An admin sees every record of the tenant, Max's included.
    assert PREFERENCE in _panel(client_for(cast.admin), run, step=approval.step).content.decode()


def test_a_memory_deleted_since_shows_as_gone(cast, client_for, waiting_run):
    run, preference, fact = waiting_run
    services.memory_delete(preference, actor=cast.member)
    panel = _panel(client_for(cast.member), run).content.decode()
    assert "a memory since deleted" in panel and PREFERENCE not in panel and "Dana Lee" in panel


def test_a_steps_proposals_say_what_became_of_them(cast, client_for, max_run, propose):
    stored = propose(max_run, "The ACME-042 champion is Dana Lee.", subject="ACME-042 champion", step=2)
    refused = propose(max_run, "The CRM password is hunter2-hunter2", step=2)
    panel = _panel(client_for(cast.member), max_run, step=2).content.decode()
    assert "The ACME-042 champion is Dana Lee." in panel
    assert f"stored</span> as <a href=\"{reverse('memory_detail', args=['acme', stored.record_id])}\"" in panel
    assert "refused" in panel and refused.reason in panel and "hunter2" not in panel
    assert "used no memory" not in panel and "No memory was used in this step." in panel


def test_a_step_without_memories_says_so(cast, client_for, max_run):
    assert "Step 3 used no memory and proposed none." in _panel(client_for(cast.member), max_run, step=3).content.decode()


def test_it_refuses_a_step_that_is_not_a_number(cast, client_for, max_run):
    response = _panel(client_for(cast.member), max_run, step="two")
    assert response.status_code == 400 and "a number" in response.content.decode()


def test_it_is_not_found_for_an_outsider_or_another_tenants_run(cast, client_for, max_run):
    assert _panel(client_for(cast.outsider), max_run).status_code == 404
    other = client_for(cast.outsider).get(reverse("run_memories", args=["globex", max_run.number]))
    assert other.status_code == 404
    assert client_for(cast.member).get(reverse("run_memories", args=["acme", 999])).status_code == 404


@pytest.mark.parametrize("who", ["admin", "reviewer", "finance", "member"])
def test_every_role_of_the_tenant_may_open_it_as_they_may_open_runs(cast, client_for, max_run, who):
    assert _panel(client_for(getattr(cast, who)), max_run).status_code == 200
