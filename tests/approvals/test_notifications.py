"""Approval emails: reviewers hear of new and overdue requests, the requester of the decision; each links to the console."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from agents.services import run_start
from approvals.models import ApprovalPolicy, ApprovalRequest
from approvals.notifications import approval_notify
from approvals.services import approval_decide, approval_webhook_set, approvals_sweep
from tests.conftest import wait_for
from tests.factories import RENEWAL_GOAL, advance


@pytest.fixture
def approval(cast, renewals, settings):
    """Here rita (a reviewer) started the run, under a policy that keeps her from deciding on it."""
    settings.CONSOLE_URL = "https://proctor.example"
    for user in (cast.admin, cast.reviewer, cast.member, cast.outsider):
        get_user_model().objects.filter(pk=user.pk).update(email=f"{user.username}@mail.example")
    ApprovalPolicy.objects.create(tenant=cast.acme, name="strict", min_risk=3, required_approvals=1)
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.reviewer))
    return run.approval_requests.get()


def test_reviewers_hear_of_a_new_request_with_a_deep_link(cast, approval, mailoutbox):
    assert approval_notify(approval_id=approval.pk, event="requested") == 1
    [mail] = mailoutbox
    assert mail.to == ["ada@mail.example"]  # rita started the run and may not approve it; gus is in Globex
    assert mail.subject == f"Approval needed: email.send in run #{approval.run.number} (Acme)"
    assert f"https://proctor.example/t/acme/approvals/?id={approval.pk}" in mail.body


def test_the_requester_hears_the_decision(cast, approval, mailoutbox):
    approval_decide(approval=approval, approve=False, actor=cast.admin, note="Wrong recipient")
    approval_notify(approval_id=approval.pk, event="decided")
    [mail] = mailoutbox
    assert mail.to == ["rita@mail.example"] and mail.subject.startswith("Rejected: email.send")
    assert "Reason: Wrong recipient" in mail.body and f"/t/acme/runs/{approval.run.number}/" in mail.body


def test_overdue_requests_go_to_the_escalation_role(cast, approval, mailoutbox):
    ApprovalRequest.objects.filter(pk=approval.pk).update(due_at=timezone.now() - timedelta(seconds=1))
    approvals_sweep()
    approval_notify(approval_id=approval.pk, event="escalated")
    [mail] = mailoutbox
    assert mail.to == ["ada@mail.example"] and mail.subject.startswith("Overdue approval")


def test_a_worker_sends_what_a_request_and_its_decision_announce(cast, renewals, receiver, start_worker, tmp_path):
    """Not the delivery functions called by hand: the request and the decision enqueue their emails and
    webhooks on commit, and a real worker sends them."""
    get_user_model().objects.filter(pk=cast.reviewer.pk).update(email="rita@mail.example")
    get_user_model().objects.filter(pk=cast.member.pk).update(email="max@mail.example")
    approval_webhook_set(tenant=cast.acme, url=receiver.url, actor=cast.admin)
    mail = tmp_path / "mail"
    start_worker(env={"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(mail),
                      "WEBHOOK_ALLOW_HTTP": "1"})  # the receiver is on loopback

    def webhooks() -> list[str]:
        return [headers["X-Proctor-Event"] for headers, _ in receiver.received]

    def mails() -> str:
        return "".join(path.read_text() for path in mail.glob("*.log")) if mail.exists() else ""

    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    wait_for(lambda: "approval.requested" in webhooks() and "Approval needed" in mails(), 30,
             message="the request's webhook and email")
    assert "To: rita@mail.example" in mails()
    approval_decide(approval=ApprovalRequest.objects.get(run=run), approve=True, actor=cast.reviewer)
    wait_for(lambda: "approval.decided" in webhooks() and "Subject: Approved: email.send" in mails(), 30,
             message="the decision's webhook and email")
    assert "To: max@mail.example" in mails()
    assert webhooks().count("approval.decided") == 1
