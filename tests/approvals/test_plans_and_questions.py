"""Plan approval and the plan editor, questions the agent asks, "assigned to me", the schema form."""

import json

import pytest

from agents.engine import plan_diff
from agents.models import Agent, PlanStep, RunEvent
from agents.services import RunError, run_pause, run_plan_edit, run_resume, run_start
from approvals.models import ApprovalPolicy, ApprovalRequest
from approvals.services import DecisionRefused, approval_assign, approval_decide
from console.models import AuditEvent
from demo.models import CalendarBooking, CrmNote, EmailMessage
from tests.factories import RENEWAL_GOAL, advance

DEFAULT_PLAN = ["Look up the account and its notes", "Draft the renewal email", "Send it to the success manager",
                "Report what was done"]


@pytest.fixture
def reviewed(renewals):
    """The demo agent whose plan a person approves (or edits) before it acts."""
    return Agent.objects.get(tenant=renewals.tenant, slug="renewals-reviewed")


def waiting_plan(cast, agent, requester=None):
    run = advance(run_start(tenant=cast.acme, agent=agent, goal=RENEWAL_GOAL, requested_by=requester or cast.member))
    assert run.status == "waiting_for_human"
    return run, ApprovalRequest.objects.get(run=run, kind="plan")


def titles(run):
    return list(PlanStep.objects.filter(run=run).values_list("title", flat=True))


def test_a_plan_waits_for_approval_and_the_agent_follows_it_as_proposed(cast, reviewed):
    run, approval = waiting_plan(cast, reviewed)
    assert approval.arguments == {"steps": DEFAULT_PLAN} and run.next_action == "The plan waits for approval"
    assert set(PlanStep.objects.filter(run=run).values_list("status", flat=True)) == {"proposed"}
    assert not run.model_calls.filter(step__gt=1).exists()  # nothing done before the plan is approved

    approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    run = advance(run)
    assert run.status == "waiting_for_human"  # now for email.send, as the plan says
    assert ApprovalRequest.objects.get(run=run, kind="tool_call").tool == "email.send"


def test_an_edited_plan_changes_what_the_agent_does(cast, reviewed):
    """The reviewer drops sending, adds a booking and reorders: the agent books and never sends."""
    run, approval = waiting_plan(cast, reviewed)
    edited = ["Look up the account and its notes", "Book a review call with the success manager",
              "Draft the renewal email", "Report what was done"]
    approval_decide(approval=approval, approve=True, actor=cast.reviewer, arguments={"steps": edited + ["  "]})
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.approved_arguments == {"steps": edited}

    run = advance(run)
    assert titles(run) == edited
    booking = ApprovalRequest.objects.get(run=run, tool="calendar.book")  # risk 3: asks first
    approval_decide(approval=booking, approve=True, actor=cast.reviewer)
    run = advance(run)
    assert run.status == "completed", run.terminal_reason
    assert CalendarBooking.objects.filter(run=run).count() == 1
    assert EmailMessage.objects.filter(run=run, sent_at__isnull=True).count() == 1  # the draft
    assert not EmailMessage.objects.filter(run=run, sent_at__isnull=False).exists()
    assert "not sent (sending was not in the plan)" in run.answer and "review is booked" in run.answer

    decided = RunEvent.objects.get(run=run, type="approval.decided", payload__kind="plan")
    assert decided.payload["by"] == "rita"
    assert {"op": "removed", "text": "Send it to the success manager"} in decided.payload["plan_diff"]
    assert {"op": "added", "text": "Book a review call with the success manager"} in decided.payload["plan_diff"]


def test_a_bad_plan_edit_is_refused_with_what_to_fix(cast, reviewed):
    run, approval = waiting_plan(cast, reviewed)
    with pytest.raises(DecisionRefused, match="at least one step") as refused:
        approval_decide(approval=approval, approve=True, actor=cast.reviewer, arguments={"steps": ["", " "]})
    assert refused.value.kind == "invalid"
    with pytest.raises(DecisionRefused, match="Step 2 is 301 characters"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer, arguments={"steps": ["ok", "x" * 301]})
    approval.refresh_from_db()
    assert approval.is_open


def test_a_rejected_plan_stops_the_agent_with_the_reason(cast, reviewed):
    run, approval = waiting_plan(cast, reviewed)
    approval_decide(approval=approval, approve=False, actor=cast.reviewer, note="Ask finance first")
    run = advance(run)
    assert run.status == "completed" and "Ask finance first" in run.answer
    assert not EmailMessage.objects.filter(run=run).exists()


def test_plan_policy_sets_self_approval_and_four_eyes_for_plans(cast, reviewed):
    ApprovalPolicy.objects.create(tenant=cast.acme, name="plans: two, not the requester", tool="plan.propose",
                                  min_risk=4, required_approvals=2, allow_self_approval=False)
    run, approval = waiting_plan(cast, reviewed, requester=cast.reviewer)
    assert approval.required_approvals == 2 and "plans: two" in approval.policy
    with pytest.raises(DecisionRefused, match="You started this run"):
        approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    approval_decide(approval=approval, approve=True, actor=cast.admin)
    approval_decide(approval=approval, approve=True, actor=cast.both)
    approval.refresh_from_db()
    assert approval.status == "approved"


def test_a_paused_runs_plan_is_edited_and_the_agent_continues_from_it(cast, renewals):
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    run = advance(run, until=("planned",))  # the plan is proposed (and accepted: this agent needs no approval)
    assert titles(run) == DEFAULT_PLAN
    run_pause(run=run, actor=cast.member)
    with pytest.raises(RunError, match="Keep at least one step"):
        run_plan_edit(run=run, actor=cast.member, steps=[])
    run_plan_edit(run=run, actor=cast.member, steps=["Look up the account and its notes", "Write a note on the account",
                                                     "Report what was done"])
    assert titles(run)[1] == "Write a note on the account"
    edited = RunEvent.objects.get(run=run, type="plan.edited")
    assert edited.payload["by"] == "max" and {"op": "removed", "text": "Draft the renewal email"} in edited.payload["diff"]
    assert AuditEvent.objects.filter(tenant=cast.acme, verb="run.plan_edited").exists()

    run_resume(run=run, actor=cast.member)
    run = advance(run)
    assert run.status == "completed", run.terminal_reason
    assert CrmNote.objects.filter(run=run).count() == 1
    assert not EmailMessage.objects.filter(run=run).exists()  # no draft, no send: not in the plan any more
    assert "sending was not in the plan" in run.answer


def test_a_plan_whose_done_step_is_not_the_first_is_edited_and_numbered_again(cast, renewals):
    """The agent may go back in its plan, so the steps done are not always the first ones."""
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member),
                  until=("planned",))
    PlanStep.objects.filter(run=run, position=2).update(status="done")
    run_pause(run=run, actor=cast.member)
    run_plan_edit(run=run, actor=cast.member, steps=["Look up the account and its notes", "Report what was done"])
    plan = list(PlanStep.objects.filter(run=run).values_list("position", "title", "status"))
    assert plan == [(1, DEFAULT_PLAN[1], "done"), (2, "Look up the account and its notes", "pending"),
                    (3, "Report what was done", "pending")]


def test_a_plan_is_edited_only_while_paused(cast, renewals):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    with pytest.raises(RunError, match="pause it to edit its plan"):
        run_plan_edit(run=run, actor=cast.member, steps=["Do something else"])


def test_plan_diff_names_each_kind_of_change():
    assert plan_diff(["a", "b", "c"], ["a", "x", "c", "d"]) == [
        {"op": "kept", "text": "a"}, {"op": "changed", "text": "x", "was": "b"}, {"op": "kept", "text": "c"},
        {"op": "added", "text": "d"}]
    assert {"op": "moved", "text": "c"} in plan_diff(["a", "b", "c"], ["c", "a", "b"])


# --- Questions --------------------------------------------------------------------------------------------

AMBIGUOUS_GOAL = "Prepare the renewal for Acme and email it to its success manager"


def test_the_agent_asks_which_account_and_goes_on_with_the_answer(cast, renewals):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=AMBIGUOUS_GOAL, requested_by=cast.member))
    question = ApprovalRequest.objects.get(run=run, kind="question")
    assert run.status == "waiting_for_human" and run.next_action == "Waits for an answer"
    assert "Which one?" in question.arguments["question"] and len(question.arguments["options"]) == 3

    with pytest.raises(DecisionRefused, match="Write the answer"):
        approval_decide(approval=question, approve=True, actor=cast.reviewer, answer=" ")
    approval_decide(approval=question, approve=True, actor=cast.reviewer, answer="The Anvil Works one, ACME-017")
    question.refresh_from_db()
    assert question.status == "approved" and question.answer == "The Anvil Works one, ACME-017"
    run = advance(run)
    send = ApprovalRequest.objects.get(run=run, tool="email.send")
    assert send.arguments["to"] == "csm-017@acme.example"


def test_a_declined_question_ends_the_run_with_the_reason(cast, renewals):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=AMBIGUOUS_GOAL, requested_by=cast.member))
    question = ApprovalRequest.objects.get(run=run, kind="question")
    approval_decide(approval=question, approve=False, actor=cast.reviewer, note="Ask the account team")
    run = advance(run)
    assert run.status == "completed" and "Ask the account team" in run.answer


# --- Assignment -------------------------------------------------------------------------------------------


def test_assigned_to_me_shows_assigned_and_escalated_requests(cast, renewals, client_for):
    from approvals.selectors import approval_list

    first = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    second = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    mine, other = (ApprovalRequest.objects.get(run=r) for r in (first, second))
    approval_assign(approval=mine, assignee="rita", actor=cast.admin)
    with pytest.raises(DecisionRefused, match="cannot decide approvals") as refused:
        approval_assign(approval=other, assignee="max", actor=cast.admin)
    assert refused.value.kind == "invalid"

    page = client_for(cast.reviewer).get("/t/acme/approvals/?mine=1")
    assert f'id="queue-item-{mine.pk}"' in page.text and f'id="queue-item-{other.pk}"' not in page.text
    assert "for rita" in page.text

    ApprovalRequest.objects.filter(pk=other.pk).update(status="escalated", escalate_to_role="admin")
    admin = cast.admin.memberships.get(tenant=cast.acme)
    assert [a.pk for a in approval_list(tenant=cast.acme, mine=True, viewer=admin)] == [other.pk]
    assert RunEvent.objects.filter(run=first, type="approval.assigned", payload__to="rita").exists()


def test_taking_a_request_from_the_pane_assigns_it_to_me(cast, approval, client_for):
    client = client_for(cast.reviewer)
    response = client.post(f"/t/acme/approvals/{approval.pk}/assignee/", {"assignee": "me"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="assignee">rita' in response.text
    response = client.post(f"/t/acme/approvals/{approval.pk}/assignee/", {"assignee": "nobody-here"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "nobody called" in response.text


def test_assign_is_404_for_outsiders_and_403_for_members(cast, approval, client_for):
    url = f"/t/acme/approvals/{approval.pk}/assignee/"
    assert client_for(cast.outsider).post(url, {"assignee": "me"}).status_code == 404
    assert client_for(cast.member).post(url, {"assignee": "me"}).status_code == 403


# --- The schema form --------------------------------------------------------------------------------------


def test_the_edit_form_is_built_from_the_tools_schema(cast, approval, client_for):
    page = client_for(cast.reviewer).get(f"/t/acme/approvals/?id={approval.pk}")
    assert 'name="arg:to"' in page.text and 'name="arg:subject"' in page.text
    assert 'name="arg:body" rows="8"' in page.text and '<textarea id="arg-body"' in page.text  # long text: a text area


def test_edit_and_approve_through_the_schema_form(cast, approval, client_for):
    client = client_for(cast.reviewer)
    url = f"/t/acme/approvals/{approval.pk}/decision/"
    fields = {"decision": "edit", "form": "fields", "arg:to": "not-an-address", "arg:subject": "Hi",
              "arg:body": "Short\r\nbody"}
    refused = client.post(url, fields, HTTP_HX_REQUEST="true")
    assert refused.status_code == 422, refused.text
    # The error stands beside the field, which keeps what was typed and takes the focus; the edit stays open.
    assert '<p class="error field-error" id="arg-to-error">value is not a valid email address' in refused.text
    assert ('name="arg:to" value="not-an-address" aria-invalid="true" aria-describedby="arg-to-error" autofocus'
            in refused.text)
    assert '<details id="edit-arguments" class="edit" open>' in refused.text

    client.post(url, {**fields, "arg:to": "dana@acme.example"}, HTTP_HX_REQUEST="true")
    approval.refresh_from_db()
    assert approval.status == "approved"
    assert approval.approved_arguments == {"to": "dana@acme.example", "subject": "Hi", "body": "Short\nbody"}


# --- Pages and API ----------------------------------------------------------------------------------------


def test_plan_and_question_show_in_the_queue_and_on_the_run_page(cast, reviewed, renewals, client_for):
    run, plan = waiting_plan(cast, reviewed)
    asking = advance(run_start(tenant=cast.acme, agent=renewals, goal=AMBIGUOUS_GOAL, requested_by=cast.member))
    client = client_for(cast.reviewer)
    queue = client.get("/t/acme/approvals/").text
    assert "4 steps" in queue and "Several accounts match" in queue
    detail = client.get(f"/t/acme/approvals/{plan.pk}/", HTTP_HX_REQUEST="true").text
    assert 'data-plan-editor' in detail and 'value="Send it to the success manager"' in detail
    run_page = client.get(f"/t/acme/runs/{run.number}/").text
    assert "The proposed plan (4 steps)" in run_page and "The plan waits for approval" in run_page
    assert "Your answer" in client.get(f"/t/acme/runs/{asking.number}/").text


def test_answering_from_the_run_page(cast, renewals, client_for):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=AMBIGUOUS_GOAL, requested_by=cast.member))
    question = ApprovalRequest.objects.get(run=run, kind="question")
    response = client_for(cast.reviewer).post(f"/t/acme/approvals/{question.pk}/decision/", {
        "from": "run", "decision": "respond", "answer": "ACME-105"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert advance(run).approval_requests.get(tool="email.send").arguments["to"] == "csm-105@acme.example"


def test_the_plan_editor_page_saves_a_paused_runs_plan(cast, renewals, client_for):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member),
                  until=("planned",))
    client = client_for(cast.member)  # the requester
    url = f"/t/acme/runs/{run.number}/plan/"
    page = client.get(url)
    assert page.status_code == 200 and "pause it to edit its plan" in page.text.lower()
    run_pause(run=run, actor=cast.member)
    assert 'id="edit-plan"' in client.get(f"/t/acme/runs/{run.number}/").text
    refused = client.post(url, {"steps": ["x" * 301]})
    assert refused.status_code == 422 and "under 300" in refused.text
    response = client.post(url, {"steps": ["Look up the account and its notes", "Report what was done", ""]})
    assert response.status_code == 302
    assert titles(run) == ["Look up the account and its notes", "Report what was done"]


def test_the_plan_editor_is_404_for_outsiders_and_403_for_other_members(cast, renewals, client_for):
    from tests.factories import make_user
    from console.models import Role

    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.reviewer)
    url = f"/t/acme/runs/{run.number}/plan/"
    assert client_for(cast.outsider).get(url).status_code == 404
    assert client_for(cast.outsider).post(url, {"steps": ["x"]}).status_code == 404
    assert client_for(cast.both).post(f"/t/globex/runs/{run.number}/plan/", {"steps": ["x"]}).status_code == 404
    assert client_for(cast.member).post(url, {"steps": ["x"]}).status_code == 403  # not the requester, no review role
    other = make_user("mia", {cast.acme: Role.MEMBER})
    assert client_for(other).get(url).status_code == 403
    assert client_for(cast.admin).get(url).status_code == 200


def test_api_answers_a_question_and_edits_a_plan(cast, reviewed, renewals, client):
    from console.services import api_token_create

    token = api_token_create(tenant=cast.acme, actor=cast.reviewer, name="reviewer").secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=AMBIGUOUS_GOAL, requested_by=cast.member))
    question = ApprovalRequest.objects.get(run=run, kind="question")
    url = f"/api/v1/approvals/{question.pk}/decisions"
    wrong = client.post(url, json.dumps({"decision": "approve"}), content_type="application/json", **auth)
    assert wrong.status_code == 422 and "respond" in wrong.json()["message"]
    answered = client.post(url, json.dumps({"decision": "respond", "answer": "ACME-042"}),
                           content_type="application/json", **auth)
    assert answered.status_code == 200 and answered.json()["answer"] == "ACME-042"

    _, plan = waiting_plan(cast, reviewed)
    edited = client.post(f"/api/v1/approvals/{plan.pk}/decisions", json.dumps(
        {"decision": "edit", "arguments": {"steps": ["Look up the account and its notes", "Report what was done"]}}),
        content_type="application/json", **auth)
    assert edited.status_code == 200 and edited.json()["approved_arguments"]["steps"][1] == "Report what was done"

    assigned = client.put(f"/api/v1/approvals/{plan.pk}/assignee", json.dumps({"assignee": "rita"}),
                          content_type="application/json", **auth)
    assert assigned.status_code == 409  # decided already: nothing to assign
    mine = client.get("/api/v1/approvals?assigned=me", **auth)
    assert mine.status_code == 200 and mine.json() == []


def test_a_plan_waiting_for_approval_is_edited_in_its_approval_not_on_the_paused_run(cast, reviewed):
    run, approval = waiting_plan(cast, reviewed)
    run_pause(run=run, actor=cast.member)
    with pytest.raises(RunError, match="edit it in the approval"):
        run_plan_edit(run=run, actor=cast.member, steps=["Something else"])


def test_reviewers_are_emailed_what_the_plan_or_question_is(cast, reviewed, renewals, mailoutbox):
    from approvals.notifications import approval_notify

    cast.reviewer.email = "rita@acme.example"
    cast.reviewer.save()
    _, plan = waiting_plan(cast, reviewed)
    approval_notify(approval_id=plan.pk, event="requested")
    asking = advance(run_start(tenant=cast.acme, agent=renewals, goal=AMBIGUOUS_GOAL, requested_by=cast.member))
    approval_notify(approval_id=asking.approval_requests.get().pk, event="requested")
    subjects = [m.subject for m in mailoutbox if m.to == ["rita@acme.example"]]
    assert subjects[0].startswith("Approval needed: its plan in run") and subjects[1].startswith("Answer needed")
    assert "proposes a plan of 4 steps" in mailoutbox[0].body


def test_a_plan_edited_while_a_call_waits_takes_over_once_the_call_is_rejected(cast, renewals):
    """Paused at the email approval, the requester drops sending from the plan and adds a note; the
    reviewer rejects the pending send; the agent then follows the edited plan instead of stopping."""
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    send = ApprovalRequest.objects.get(run=run, tool="email.send")
    run_pause(run=run, actor=cast.member)
    assert [s.title for s in PlanStep.objects.filter(run=run, status="done")] == DEFAULT_PLAN[:2]
    run_plan_edit(run=run, actor=cast.member, steps=["Write a note on the account", "Report what was done"])
    assert titles(run) == DEFAULT_PLAN[:2] + ["Write a note on the account", "Report what was done"]
    run = run_resume(run=run, actor=cast.member)
    assert run.status == "waiting_for_human"  # the send still waits for its decision
    approval_decide(approval=send, approve=False, actor=cast.reviewer, note="Sending is off the plan")
    run = advance(run)
    assert run.status == "completed", run.terminal_reason
    assert CrmNote.objects.filter(run=run).count() == 1
    assert not EmailMessage.objects.filter(run=run, sent_at__isnull=False).exists()
