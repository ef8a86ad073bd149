"""Decisions on approval requests: four-eyes, self-approval, edit-and-approve, races, expiry, escalation."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Run, RunEvent, ToolInvocation
from agents.services import run_start
from approvals.models import ApprovalPolicy, ApprovalRequest
from approvals.services import DecisionRefused, approval_decide, approvals_sweep
from console.models import AuditEvent
from demo.models import EmailMessage
from tests.conftest import at_once
from tests.factories import RENEWAL_GOAL, advance


def waiting_send(cast, renewals, requester=None):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=requester or cast.member))
    assert run.status == "waiting_for_human"
    return run, ApprovalRequest.objects.get(run=run)


def test_four_eyes_needs_two_different_people(cast, renewals):
    ApprovalPolicy.objects.create(tenant=cast.acme, name="two for email", tool="email.send", min_risk=0,
                                  required_approvals=2)
    run, approval = waiting_send(cast, renewals)
    assert approval.required_approvals == 2 and "2 distinct reviewers" in approval.policy

    approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    approval.refresh_from_db()
    assert approval.status == "pending"
    with pytest.raises(DecisionRefused, match="You already approved this; it needs 2 different people"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer)

    approval_decide(approval=approval, approve=True, actor=cast.admin)
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by == cast.admin
    assert advance(run).status == "completed"
    assert EmailMessage.objects.filter(sent_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(tenant=cast.acme, verb="approval.approve").count() == 2


def test_a_requester_may_not_approve_their_own_run_when_policy_says_so(cast, renewals):
    ApprovalPolicy.objects.create(tenant=cast.acme, name="no self", min_risk=3, required_approvals=1)
    run, approval = waiting_send(cast, renewals, requester=cast.reviewer)
    with pytest.raises(DecisionRefused, match="You started this run"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    approval_decide(approval=approval, approve=True, actor=cast.admin)
    assert advance(run).status == "completed"


def test_edit_and_approve_runs_the_edited_call_and_tells_the_agent(cast, renewals):
    run, approval = waiting_send(cast, renewals)
    edited = {**approval.arguments, "to": "dana@acme.example", "body": "Short version."}
    approval_decide(approval=approval, approve=True, actor=cast.reviewer, arguments=edited)
    assert advance(run).status == "completed"

    sent = EmailMessage.objects.get(sent_at__isnull=False)
    assert (sent.to, sent.body) == ("dana@acme.example", "Short version.")
    approval.refresh_from_db()
    invocation = ToolInvocation.objects.get(run=run, tool="email.send")
    assert approval.tool_invocation == invocation and invocation.arguments["to"] == "dana@acme.example"
    decided = RunEvent.objects.get(run=run, type="approval.decided")
    assert decided.payload["edited_arguments"]["to"] == "dana@acme.example"
    assert invocation.result["reviewer_edited_arguments"]["to"] == "dana@acme.example"


def test_the_approved_call_s_step_writes_its_invocation_and_the_request_s_link_with_the_run(cast, renewals):
    """The step that runs an approved call reads the request once and writes the call's invocation and the request's
    link to it in the run's own statement (no ORM insert or update of its own): what the run card shows as "it ran"."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.services import run_advance

    run, approval = waiting_send(cast, renewals)
    approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    with CaptureQueriesContext(connection) as step:
        assert run_advance(run_id=run.pk, worker="w1") == "tool_done"
    approval.refresh_from_db()
    assert approval.tool_invocation == ToolInvocation.objects.get(run=run, tool="email.send")
    assert approval.tool_invocation.status == "ok" and EmailMessage.objects.filter(run=run, sent_at__isnull=False).count() == 1
    touching = [query["sql"] for query in step.captured_queries if "approvals_approvalrequest" in query["sql"]]
    assert len(touching) == 2 and touching[0].lstrip().startswith("SELECT")  # the read, then the run's write
    assert "agents_run" in touching[1] and "agents_toolinvocation" in touching[1]
    page = Client()
    page.force_login(cast.member)
    assert "it ran: ok" in page.get(f"/t/acme/runs/{run.number}/").content.decode()


OUTSIDE_NEEDS_TWO = {"name": "Outside email needs two", "tool": "email.send", "min_risk": 0, "required_approvals": 2,
                     "condition": {"argument": "to", "op": "domain_not_in", "value": "acme.example"}}


def test_an_edit_is_checked_against_the_policy_like_a_new_call(cast, renewals):
    """One reviewer cannot approve alone, by editing it in, a call the policy gives two reviewers."""
    ApprovalPolicy.objects.create(tenant=cast.acme, **OUTSIDE_NEEDS_TWO)
    run, approval = waiting_send(cast, renewals)
    assert approval.required_approvals == 1  # to csm-042@acme.example: inside, one reviewer

    outside = {**approval.arguments, "to": "buyer@rival.example"}
    with pytest.raises(DecisionRefused, match="this request now needs 2 different reviewers") as refused:
        approval_decide(approval=approval, approve=True, actor=cast.reviewer, arguments=outside)
    assert refused.value.kind == "needs_more_approvals" and "Your approval is 1 of 2" in str(refused.value)
    approval.refresh_from_db()
    assert (approval.status, approval.required_approvals, approval.approved_arguments["to"]) == (
        "pending", 2, "buyer@rival.example")
    assert "Outside email needs two" in approval.policy
    assert advance(run).status == "waiting_for_human" and not EmailMessage.objects.filter(sent_at__isnull=False).exists()

    approval_decide(approval=approval, approve=True, actor=cast.admin)
    approval.refresh_from_db()
    assert approval.status == "approved"
    assert advance(run).status == "completed"
    assert EmailMessage.objects.get(sent_at__isnull=False).to == "buyer@rival.example"


def test_an_edit_never_lowers_what_the_request_needs(cast, renewals):
    ApprovalPolicy.objects.create(tenant=cast.acme, **OUTSIDE_NEEDS_TWO)
    run, approval = waiting_send(cast, renewals)
    with pytest.raises(DecisionRefused, match="now needs 2"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer,
                        arguments={**approval.arguments, "to": "buyer@rival.example"})
    approval_decide(approval=approval, approve=True, actor=cast.admin,  # back inside: one reviewer would do
                    arguments={**approval.arguments, "to": "dana@acme.example"})
    approval.refresh_from_db()
    assert (approval.status, approval.required_approvals) == ("pending", 2)
    approval_decide(approval=approval, approve=True, actor=cast.both)
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.arguments_to_run["to"] == "dana@acme.example"


def test_a_requester_whose_edit_falls_under_a_no_self_approval_rule_does_not_count(cast, renewals):
    ApprovalPolicy.objects.create(tenant=cast.acme, **OUTSIDE_NEEDS_TWO)  # allow_self_approval off
    run, approval = waiting_send(cast, renewals, requester=cast.reviewer)
    assert approval.allow_self_approval  # the default rule lets the requester approve the call as proposed
    with pytest.raises(DecisionRefused, match="You started this run, so your approval does not count"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer,
                        arguments={**approval.arguments, "to": "buyer@rival.example"})
    approval.refresh_from_db()
    assert not approval.allow_self_approval and approval.approved_arguments["to"] == "buyer@rival.example"
    assert [d.verdict for d in approval.decisions.all()] == ["edit"]
    with pytest.raises(DecisionRefused, match="You started this run; the policy needs someone else"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    approval_decide(approval=approval, approve=True, actor=cast.admin)
    approval.refresh_from_db()
    assert approval.status == "pending"
    approval_decide(approval=approval, approve=True, actor=cast.both)
    assert advance(run).status == "completed"


def test_edited_arguments_that_fail_the_schema_are_refused_with_the_reason(cast, renewals):
    _, approval = waiting_send(cast, renewals)
    with pytest.raises(DecisionRefused, match="not valid"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer, arguments={"to": "not an address"})
    approval.refresh_from_db()
    assert approval.status == "pending" and approval.approved_arguments is None


def test_a_repeated_submit_with_the_same_key_is_one_decision(cast, renewals):
    _, approval = waiting_send(cast, renewals)
    approval_decide(approval=approval, approve=True, actor=cast.reviewer, client_key="click-1")
    approval_decide(approval=approval, approve=True, actor=cast.reviewer, client_key="click-1")
    assert approval.decisions.count() == 1


def test_approve_and_reject_at_once_exactly_one_wins(cast, renewals, transactional_db):
    run, approval = waiting_send(cast, renewals)
    results = at_once(lambda: approval_decide(approval=approval, approve=True, actor=cast.reviewer),
                      lambda: approval_decide(approval=approval, approve=False, actor=cast.admin),
                      expect=(DecisionRefused,))
    outcomes = [str(result) if isinstance(result, DecisionRefused) else "won" for result in results]
    assert outcomes.count("won") == 1
    [loser_message] = [m for m in outcomes if m != "won"]
    approval.refresh_from_db()
    assert loser_message.startswith(f"Already {approval.status} by {approval.decided_by.username} at ")
    advance(run)
    assert ToolInvocation.objects.filter(run=run, tool="email.send").count() == (1 if approval.status == "approved" else 0)


def test_a_decision_after_expiry_is_refused_and_the_agent_is_told(cast, renewals):
    run, approval = waiting_send(cast, renewals)
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(DecisionRefused, match="expired .* without a decision"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    approval.refresh_from_db()
    assert approval.status == "expired"
    run = advance(run)
    assert run.status == "completed" and "did not run email.send: Nobody approved this call" in run.answer
    assert not EmailMessage.objects.filter(sent_at__isnull=False).exists()


def test_overdue_requests_escalate_and_expired_ones_cancel_the_run_when_policy_says_so(cast, renewals):
    ApprovalPolicy.objects.create(tenant=cast.acme, name="strict", min_risk=3, required_approvals=1,
                                  expiry_outcome="cancel_run", escalate_to_role="admin")
    run, approval = waiting_send(cast, renewals)
    ApprovalRequest.objects.filter(pk=approval.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    assert approvals_sweep() == {"escalated": 1, "expired": 0}
    approval.refresh_from_db()
    assert approval.status == "escalated" and approval.escalated_at is not None
    assert RunEvent.objects.filter(run=run, type="approval.escalated", payload__to_role="admin").exists()
    assert AuditEvent.objects.filter(tenant=cast.acme, verb="approval.escalated").exists()
    assert approvals_sweep() == {"escalated": 0, "expired": 0}  # once

    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert approvals_sweep() == {"escalated": 0, "expired": 1}
    run = Run.objects.get(pk=run.pk)
    assert run.status == "cancelled" and run.terminal_reason == "cancelled by policy (approval expired)"


def test_a_decision_is_the_request_s_lock_the_run_s_lock_and_one_write(cast, renewals):
    """Its transaction: the request's row lock (its run's number, the webhook and the client key read with it), the
    run's lock, and one statement writing the request's decision, the decision and audit rows, the run's event and
    status. Every record a reviewer and the run's page show is there after it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from approvals.models import ApprovalDecision

    run, approval = waiting_send(cast, renewals)
    with CaptureQueriesContext(connection) as decision:
        decided = approval_decide(approval=approval, approve=True, actor=cast.reviewer, note="fine",
                                  client_key="k-1")
    statements = [query["sql"] for query in decision.captured_queries if not query["sql"].startswith(
        ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT"))]
    assert len(statements) == 3, statements
    lock, run_lock, write = statements
    assert "FOR UPDATE OF a" in lock and "approvals_approvaldecision" in lock  # the client key, under the lock
    assert "FOR NO KEY UPDATE" in run_lock
    for table in ("approvals_approvalrequest", "approvals_approvaldecision", "console_auditevent", "agents_runevent"):
        assert table in write, table

    approval.refresh_from_db()
    assert (decided.status, approval.status, approval.decided_by, approval.decision_note) == (
        "approved", "approved", cast.reviewer, "fine")
    assert approval.decided_at is not None and Run.objects.get(pk=run.pk).status == "queued"
    assert ApprovalDecision.objects.get(approval=approval).verdict == "approve"
    assert AuditEvent.objects.filter(verb="approval.approve", target=f"run #{run.number}: email.send").exists()
    assert RunEvent.objects.get(run=run, type="approval.decided").payload["by"] == "rita"
    again = approval_decide(approval=approval, approve=True, actor=cast.reviewer, client_key="k-1")
    assert again.status == "approved" and ApprovalDecision.objects.filter(approval=approval).count() == 1


def test_a_decision_on_another_tenant_s_request_is_404_and_changes_nothing(cast, renewals, client_for):
    """sam reviews in Acme and administers Globex: through Globex's queue, Acme's request is not there."""
    _, approval = waiting_send(cast, renewals)
    response = client_for(cast.both).post(f"/t/globex/approvals/{approval.pk}/decision/", {"decision": "approve"})
    assert response.status_code == 404
    with pytest.raises(ApprovalRequest.DoesNotExist):
        approval_decide(approval=ApprovalRequest(pk=approval.pk, tenant=cast.globex), approve=True, actor=cast.both)
    approval.refresh_from_db()
    assert approval.status == "pending" and not approval.decisions.exists()


def test_a_decision_s_notice_is_enqueued_only_when_somebody_gets_it(cast, renewals, django_capture_on_commit_callbacks):
    """The requester hears of the decision by email; with no address and no webhook there is nobody to tell, and
    no task is sent (the worker resuming the run has it to itself)."""
    import json

    from django.conf import settings
    from django.contrib.auth import get_user_model

    from console.health import redis_client

    def notices() -> int:
        queued = redis_client(url=settings.CELERY_BROKER_URL).lrange("celery", 0, -1)
        return sum(json.loads(raw)["headers"]["task"] == "approvals.notify" for raw in queued)

    for email, told in (("", 0), ("max@mail.example", 1)):
        get_user_model().objects.filter(pk=cast.member.pk).update(email=email)
        _, approval = waiting_send(cast, renewals)
        before = notices()
        with django_capture_on_commit_callbacks(execute=True):
            approval_decide(approval=approval, approve=True, actor=cast.reviewer)
        assert notices() - before == told, email
