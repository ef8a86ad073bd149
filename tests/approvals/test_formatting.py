"""What a reviewer reads: arguments as formatted JSON, never Python's repr; an email as To / Subject /
body; recent events that say what happened; policy text that fits plans and questions."""

from django.urls import reverse

from agents.engine import ASK_TOOL, PLAN_TOOL
from approvals.policy import DEFAULT_RULE, Rule

REPR = "{&#x27;"  # how {'body': ...} comes out of pprint, escaped


def test_the_queue_shows_the_email_as_to_subject_and_body_and_json_not_repr(cast, client_for, approval):
    page = client_for(cast.reviewer).get(reverse("approvals", args=["acme"])).content.decode()
    assert REPR not in page
    preview = page[page.index('id="proposed-call"'):]
    assert "<dt>To</dt><dd>csm-042@acme.example</dd>" in preview
    assert "<dt>Subject</dt><dd>Renewal plan for Acme Rocket Supply (ACME-042)</dd>" in preview
    assert "Hi,<br>" in preview  # the body's lines as lines
    assert "&quot;to&quot;: &quot;csm-042@acme.example&quot;" in preview  # the JSON beside it, indented
    assert '  &quot;subject&quot;:' in preview


def test_the_run_card_and_the_timeline_show_json_not_repr(cast, client_for, approval):
    page = client_for(cast.member).get(reverse("run_detail", args=["acme", approval.run.number])).content.decode()
    assert REPR not in page
    card = page[page.index('id="run-card"'):page.index('id="run-timeline"')]
    assert "<dt>To</dt><dd>csm-042@acme.example</dd>" in card
    timeline = page[page.index('id="run-timeline"'):]
    assert "<strong>crm.get_account</strong> <span class=\"ok\">succeeded</span>" in timeline
    assert "&quot;success_manager&quot;: &quot;csm-042@acme.example&quot;" in timeline  # the result, as JSON


def test_recent_events_say_which_tool_did_what(cast, client_for, approval):
    page = client_for(cast.reviewer).get(reverse("approvals", args=["acme"])).content.decode()
    recent = page[page.index("Recent events"):]
    assert "<strong>email.draft</strong> <span class=\"ok\">succeeded</span>" in recent
    assert "<strong>email.send</strong> proposed" in recent and "waits for a reviewer" in recent


def test_money_reads_the_same_on_the_list_the_card_and_the_queue(cast, client_for, approval):
    run = approval.run
    run.cost_usd = "1234.5"
    run.save(update_fields=["cost_usd"])
    for url in (reverse("runs", args=["acme"]), reverse("run_detail", args=["acme", run.number]),
                reverse("approvals", args=["acme"])):
        assert "$1,234.5000" in client_for(cast.reviewer).get(url).content.decode(), url


def test_plans_and_questions_are_described_as_what_applies_to_them():
    assert DEFAULT_RULE.describe(PLAN_TOOL) == "plans: approved by one reviewer, due within 60 min (default policy)"
    assert DEFAULT_RULE.describe(ASK_TOOL) == "questions the agent asks: answered by one reviewer, due within 60 min (default policy)"
    strict = Rule(required_approvals=2, tool=PLAN_TOOL, agent_id=7, sla_minutes=30, name="Plans twice")
    assert strict.describe() == ("plans of this agent: approved by 2 distinct reviewers, not by the run's requester, "
                                 "due within 30 min (Plans twice)")
    assert "risk" not in DEFAULT_RULE.describe(ASK_TOOL)
    assert DEFAULT_RULE.describe("email.send") == "every tool, risk ≥ 3: one approval (default policy)"


def test_a_plan_waiting_for_approval_names_the_plan_policy(cast, client_for, renewals):
    from agents.models import Agent
    from agents.services import run_start
    from tests.factories import RENEWAL_GOAL, advance

    agent = Agent.objects.get(tenant=cast.acme, slug="renewals-reviewed")
    run = advance(run_start(tenant=cast.acme, agent=agent, goal=RENEWAL_GOAL, requested_by=cast.member))
    request = run.approval_requests.get()
    assert request.kind == "plan" and request.policy.startswith("plans: approved by one reviewer")
    page = client_for(cast.reviewer).get(reverse("approvals", args=["acme"])).content.decode()
    assert "plans: approved by one reviewer" in page and "every tool" not in page
