"""Ask-to-continue budgets: at 100% the run waits for a person (an approval of kind budget, in the queue and
on the run page) instead of calling the model; approving grants the stated (or edited) extension to that
run, once, audited; rejecting ends the run as a stopping budget would."""

import pytest
from django.db.models import Sum

from agents.models import Agent, Run, RunEvent
from agents.services import run_start
from approvals.models import ApprovalRequest
from approvals.services import DecisionRefused, approval_decide, approval_decision_take
from console.models import AuditEvent
from costs.models import Budget, BudgetExtension, LedgerEntry
from costs.services import budget_save
from tests.conftest import wait_for
from tests.factories import advance, make_looper


@pytest.fixture(autouse=True)
def small_estimates(settings):
    settings.MODEL_MAX_OUTPUT_TOKENS = 20
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"


def ask_budget(cast, **fields):
    fields = {"name": "Acme asks", "thresholds": [100], "action": "ask", "limit_tokens": 600, **fields}
    return budget_save(tenant=cast.acme, actor=cast.finance, budget=Budget(**fields))


def loop(cast, times):
    agent = Agent.objects.filter(tenant=cast.acme, slug="looper").first() or make_looper(cast.acme)
    run = run_start(tenant=cast.acme, agent=agent, goal=f"Call noop {times} times",
                    requested_by=cast.member)
    return advance(run)


def tokens_of(run):
    return LedgerEntry.objects.filter(run_id=run.pk).aggregate(n=Sum("input_tokens") + Sum("output_tokens"))["n"] or 0


def test_at_the_limit_the_run_waits_for_a_person_instead_of_calling_the_model(cast, client_for):
    ask_budget(cast, extension_tokens=5000)
    run = loop(cast, 30)
    assert run.status == "waiting_for_human"
    request = ApprovalRequest.objects.get(run=run)
    assert request.kind == "budget" and request.status == "pending"
    assert request.arguments["budget"] == "Acme asks" and request.arguments["limit_tokens"] == 600
    assert 0 < request.arguments["spent_tokens"] <= 600 and request.arguments["extension_tokens"] == 5000
    calls = LedgerEntry.objects.filter(run_id=run.pk).count()
    assert advance(run).status == "waiting_for_human"  # stepped again: still no model call
    assert LedgerEntry.objects.filter(run_id=run.pk).count() == calls

    queue = client_for(cast.reviewer).get(f"/t/acme/approvals/?id={request.pk}")
    assert b"Acme asks used up" in queue.content and b"Approve the extension" in queue.content
    assert RunEvent.objects.filter(run=run, type="approval.requested", payload__kind="budget").exists()


def test_approving_grants_the_extension_once_and_the_run_completes(cast):
    ask_budget(cast, extension_tokens=5000)
    run = loop(cast, 12)
    request = ApprovalRequest.objects.get(run=run, kind="budget")
    approval_decide(approval=request, approve=True, actor=cast.reviewer)
    run = advance(run)
    assert run.status == "completed"
    grant = BudgetExtension.objects.get(run_id=run.pk)
    assert (grant.tokens, grant.granted_by, grant.approval_id) == (5000, "rita", request.pk)
    assert 600 < tokens_of(run) <= 600 + 5000
    assert AuditEvent.objects.filter(verb="budget.extended", actor_label="rita", data__extension_tokens=5000).exists()
    # Another run of the tenant is held at the limit: the extension was this run's.
    other = loop(cast, 3)
    assert other.status == "waiting_for_human"


def test_an_edited_extension_is_what_is_granted_and_using_it_up_asks_again(cast, client_for):
    ask_budget(cast, extension_tokens=5000)
    run = loop(cast, 40)
    request = ApprovalRequest.objects.get(run=run, kind="budget")
    response = client_for(cast.reviewer).post(f"/t/acme/approvals/{request.pk}/decision/",
                                              {"decision": "edit", "extension_tokens": "300"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    run = advance(run)
    assert run.status == "waiting_for_human"  # the 300 tokens were used up: a second request
    assert BudgetExtension.objects.get(run_id=run.pk).tokens == 300
    second = ApprovalRequest.objects.filter(run=run, kind="budget", status="pending").get()
    assert second.pk != request.pk and second.arguments["granted_tokens"] == 300
    assert tokens_of(run) <= 600 + 300


def test_a_bad_extension_is_refused_clearly(cast, client_for):
    ask_budget(cast)
    run = loop(cast, 30)
    request = ApprovalRequest.objects.get(run=run, kind="budget")
    assert request.arguments["extension_tokens"] == 120  # a fifth of the limit
    with pytest.raises(DecisionRefused, match="not negative"):
        approval_decision_take(approval=request, decision="edit", actor=cast.reviewer,
                               arguments={"extension_tokens": -5})
    for unusable in ({"extension_usd": "NaN"}, {"extension_usd": "1e40"}, {"extension_tokens": 10**16},
                     {"extension_tokens": 0}):
        with pytest.raises(DecisionRefused):
            approval_decision_take(approval=request, decision="edit", actor=cast.reviewer, arguments=unusable)
    response = client_for(cast.reviewer).post(f"/t/acme/approvals/{request.pk}/decision/",
                                              {"decision": "edit", "extension_tokens": "lots"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and b"whole number of tokens" in response.content
    request.refresh_from_db()
    assert request.status == "pending"


def test_rejecting_ends_the_run_as_the_budget_being_exhausted(cast):
    ask_budget(cast)
    run = loop(cast, 30)
    request = ApprovalRequest.objects.get(run=run, kind="budget")
    approval_decide(approval=request, approve=False, actor=cast.reviewer, note="Not this month")
    run = advance(run)
    assert run.status == "failed" and run.terminal_reason == "budget_exhausted: Acme asks"
    assert not BudgetExtension.objects.exists()


def test_with_a_worker_approve_extends_and_reject_ends(cast, start_worker, client_for):
    ask_budget(cast, extension_tokens=100000)
    agent = make_looper(cast.acme)
    extended, refused = (run_start(tenant=cast.acme, agent=agent, goal="Call noop 25 times", requested_by=cast.member)
                         for _ in range(2))
    start_worker("asks", concurrency=2, env={"MODEL_MAX_OUTPUT_TOKENS": "20", "DEMO_PRICED_AS": "openai:gpt-4o-mini"})

    def request_of(run):
        return ApprovalRequest.objects.filter(run=run, kind="budget", status="pending").first()

    wait_for(lambda: request_of(extended) and request_of(refused), 60, interval=0.3, message="both runs to ask")
    reviewer = client_for(cast.reviewer)
    queue = reviewer.get("/t/acme/approvals/")
    assert queue.content.count(b"Acme asks used up") == 2
    reviewer.post(f"/t/acme/approvals/{request_of(extended).pk}/decision/", {"decision": "approve"})
    reviewer.post(f"/t/acme/approvals/{request_of(refused).pk}/decision/", {"decision": "reject", "note": "enough"})

    def ended(run):
        return Run.objects.get(pk=run.pk).status in ("completed", "failed")

    wait_for(lambda: ended(extended) and ended(refused), 60, interval=0.3, message="both runs to end")
    assert Run.objects.get(pk=extended.pk).status == "completed"
    refused = Run.objects.get(pk=refused.pk)
    assert refused.status == "failed" and refused.terminal_reason == "budget_exhausted: Acme asks"


def test_the_run_page_says_which_budget_waits_and_what_approving_grants(cast, client_for):
    ask_budget(cast, extension_tokens=5000)
    run = loop(cast, 30)
    page = client_for(cast.reviewer).get(f"/t/acme/runs/{run.number}/").content.decode()
    assert "the budget “Acme asks” is used up: spent" in page and "of 600 tokens" in page
    assert "approving grants 5000 tokens for the rest of the run" not in page  # a tenant budget: for its period
    assert "approving grants 5000 tokens until the month" in page
    assert "Change the extension in Approvals" in page


def test_a_token_extends_a_budget_over_the_api(cast, client):
    from console.services import api_token_create

    ask_budget(cast)
    run = loop(cast, 30)
    request = ApprovalRequest.objects.get(run=run, kind="budget")
    secret = api_token_create(tenant=cast.acme, name="bot", actor=cast.reviewer).secret
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    refused = client.post(f"/api/v1/approvals/{request.pk}/decisions", {"decision": "edit", "arguments": {
        "extension_usd": "lots"}}, content_type="application/json", **headers)
    assert refused.status_code == 422 and "amount in USD" in refused.content.decode()
    taken = client.post(f"/api/v1/approvals/{request.pk}/decisions", {"decision": "edit", "arguments": {
        "extension_tokens": 40}}, content_type="application/json", **headers)
    assert taken.status_code == 200 and taken.json()["status"] == "approved"
    advance(run)
    assert BudgetExtension.objects.get(run_id=run.pk).tokens == 40


def test_reviewers_are_emailed_what_the_budget_request_asks(cast, mailoutbox):
    from django.contrib.auth import get_user_model

    from approvals.notifications import approval_notify

    get_user_model().objects.filter(pk=cast.reviewer.pk).update(email="rita@mail.example")
    ask_budget(cast)
    request = ApprovalRequest.objects.get(run=loop(cast, 30), kind="budget")
    approval_notify(approval_id=request.pk, event="requested")
    [mail] = mailoutbox
    assert mail.subject.startswith("Approval needed: more of the budget Acme asks in run #")
    assert "The budget Acme asks is used up" in mail.body


def test_a_budget_extend_policy_sets_who_decides_the_extension_and_by_when(cast):
    """A rule scoped to the pseudo-tool budget.extend shapes the request the budget's ask makes: its due and expiry
    times, escalation and self-approval; its approvals needed do not apply (one approval grants an extension)."""
    from datetime import timedelta

    from approvals.models import ApprovalPolicy

    ApprovalPolicy.objects.create(tenant=cast.acme, name="Extensions by admins", tool="budget.extend",
                                  required_approvals=3, allow_self_approval=False, sla_minutes=15, expire_minutes=45,
                                  escalate_to_role="admin", min_risk=4)
    ask_budget(cast, extension_tokens=5000)
    run = loop(cast, 12)
    request = ApprovalRequest.objects.get(run=run, kind="budget")
    assert (request.required_approvals, request.allow_self_approval, request.escalate_to_role) == (1, False, "admin")
    # What the queue's pane and the run card say: the rule as it applies to an extension, not as a tool rule.
    assert request.policy == ("budget extensions: approved by one reviewer, not by the run's requester, due within "
                              "15 min (Extensions by admins)")
    assert request.due_at - request.created_at == pytest.approx(timedelta(minutes=15), abs=timedelta(seconds=5))
    assert request.expires_at - request.created_at == pytest.approx(timedelta(minutes=45), abs=timedelta(seconds=5))
    approval_decide(approval=request, approve=True, actor=cast.reviewer)
    assert advance(run).status == "completed"
