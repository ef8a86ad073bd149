"""The requester's controls: only those that apply, refusals in sentences, cancel with a reason said once,
every control audited in words, plan steps done only when the agent did them."""

import pytest

from agents.models import PlanStep
from agents.services import run_start
from approvals.services import approval_decide
from console.models import AuditEvent
from tests.factories import RENEWAL_GOAL, advance


@pytest.fixture
def waiting(cast, renewals):
    return advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))


def controls(page: str) -> str:
    return page[page.index('id="run-controls"'):page.index('id="run-plan"')]


def test_a_waiting_run_offers_pause_and_cancel_and_an_ended_one_nothing(cast, client_for, waiting):
    client = client_for(cast.member)
    shown = controls(client.get(f"/t/acme/runs/{waiting.number}/").text)
    assert ">Pause</button>" in shown and "Cancel…" in shown and ">Resume</button>" not in shown
    client.post(f"/t/acme/runs/{waiting.number}/pause/")
    shown = controls(client.get(f"/t/acme/runs/{waiting.number}/").text)
    assert ">Resume</button>" in shown and ">Pause</button>" not in shown
    client.post(f"/t/acme/runs/{waiting.number}/cancel/", {"reason": "Wrong account"})
    shown = controls(client.get(f"/t/acme/runs/{waiting.number}/").text)
    assert "<button" not in shown and "nothing left to control" in shown


def test_refusals_read_as_sentences(cast, client_for, waiting):
    client = client_for(cast.member)
    client.post(f"/t/acme/runs/{waiting.number}/cancel/")
    page = client.post(f"/t/acme/runs/{waiting.number}/pause/", follow=True).text
    assert "This run was cancelled; there is nothing left to pause." in page
    page = client.post(f"/t/acme/runs/{waiting.number}/resume/", follow=True).text
    assert "This run was cancelled; there is nothing left to resume." in page


def test_a_cancel_reason_is_in_the_timeline_and_who_cancelled_is_said_once(cast, client_for, waiting):
    client = client_for(cast.member)
    client.post(f"/t/acme/runs/{waiting.number}/cancel/", {"reason": "Wrong account"})
    page = client.get(f"/t/acme/runs/{waiting.number}/").text
    assert "by max by max" not in page and "cancelled by max" not in page.split('id="run-timeline"')[0]
    card = page[page.index('id="run-card"'):page.index('id="run-controls"')]
    assert "Cancelled</span>" in card and "by max at" in card
    assert "<strong>max</strong> cancelled the run: “Wrong account”" in page


def test_start_pause_resume_and_cancel_are_audited_in_words(cast, client_for, renewals):
    client = client_for(cast.member)
    client.post("/t/acme/runs/", {"agent": renewals.pk, "goal": "Renew ACME-042"})
    number = renewals.runs.get().number
    for action in ("pause", "resume"):
        client.post(f"/t/acme/runs/{number}/{action}/")
    client.post(f"/t/acme/runs/{number}/cancel/", {"reason": "Not needed"})
    events = {e.verb: e for e in AuditEvent.objects.filter(tenant=cast.acme, verb__startswith="run.")}
    assert set(events) == {"run.started", "run.paused", "run.resumed", "run.cancelled"}
    assert events["run.started"].target == f"run #{number} (Renewals assistant)"
    assert events["run.started"].data == {"goal": "Renew ACME-042", "agent_version": 1}
    assert events["run.paused"].data == {"status before": "queued"}
    assert events["run.cancelled"].data["reason"] == "Not needed" and events["run.cancelled"].actor == cast.member
    page = client_for(cast.admin).get("/t/acme/admin/audit/").text
    assert "reason: Not needed" in page and "goal: Renew ACME-042" in page


def test_a_rejected_send_is_not_marked_done_when_the_run_completes(cast, waiting):
    approval = waiting.approval_requests.get()
    approval_decide(approval=approval, approve=False, actor=cast.reviewer, note="Not yet")
    run = advance(waiting)
    assert run.status == "completed"
    steps = dict(PlanStep.objects.filter(run=run).values_list("title", "status"))
    assert steps["Look up the account and its notes"] == "done" and steps["Draft the renewal email"] == "done"
    assert steps["Send it to the success manager"] != "done"


def test_a_sent_email_marks_its_step_done(cast, waiting):
    approval_decide(approval=waiting.approval_requests.get(), approve=True, actor=cast.reviewer)
    run = advance(waiting)
    assert run.status == "completed"
    assert PlanStep.objects.get(run=run, title="Send it to the success manager").status == "done"
