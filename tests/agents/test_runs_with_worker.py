"""Runs driven by real Celery worker processes."""

import time


from agents.models import ModelCall, RunEvent, RunStatus, ToolInvocation
from agents.services import run_add_instruction, run_cancel, run_pause, run_resume, run_start
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from demo.models import EmailMessage
from tests.conftest import wait_for
from tests.factories import RENEWAL_GOAL, make_looper
from traces.models import Span


def status_of(run, *statuses, timeout=30):
    def reached():
        run.refresh_from_db()
        return run.status in statuses
    wait_for(reached, timeout, interval=0.1, message=f"run {run.pk} to reach {statuses} (is {run.status})")
    return run.status


def assert_gapless(run):
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_demo_run_waits_for_approval_then_completes_and_sends_once(cast, renewals, start_worker):
    start_worker()
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    status_of(run, RunStatus.WAITING_FOR_HUMAN)
    approval = ApprovalRequest.objects.get(run=run)
    assert approval.tool == "email.send" and approval.risk == 3
    assert not EmailMessage.objects.filter(sent_at__isnull=False).exists()  # never unapproved
    approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    assert status_of(run, RunStatus.COMPLETED, RunStatus.FAILED) == RunStatus.COMPLETED
    sent = EmailMessage.objects.get(sent_at__isnull=False)
    assert sent.to == "csm-042@acme.example" and "ACME-042" in sent.subject
    assert "sent to csm-042@acme.example" in run.answer
    assert_gapless(run)
    # Done is what the agent did: the last step (its report, the answer itself) is not a call the runtime can mark.
    assert list(run.plan_steps.values_list("status", flat=True)) == ["done"] * 3 + ["pending"]
    assert ToolInvocation.objects.filter(run=run, tool="email.send").count() == 1
    assert ModelCall.objects.filter(run=run, status="ok").count() == run.step


def test_a_rejection_goes_back_to_the_agent_which_adapts(cast, renewals, start_worker):
    start_worker()
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    status_of(run, RunStatus.WAITING_FOR_HUMAN)
    approval_decide(approval=ApprovalRequest.objects.get(run=run), approve=False, actor=cast.reviewer,
                    note="wrong recipient, send to the champion")
    status_of(run, RunStatus.COMPLETED, RunStatus.FAILED)
    assert run.status == RunStatus.COMPLETED
    assert "wrong recipient" in run.answer
    assert not EmailMessage.objects.filter(sent_at__isnull=False).exists()


def test_cancel_ends_a_waiting_run_and_its_approval(cast, renewals, start_worker):
    start_worker()
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    status_of(run, RunStatus.WAITING_FOR_HUMAN)
    run_cancel(run=run, actor=cast.member)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.terminal_reason == "cancelled by max"
    assert ApprovalRequest.objects.get(run=run).status == "cancelled"


def test_an_added_instruction_reaches_the_next_step(cast, renewals, start_worker):
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    run_add_instruction(run=run, actor=cast.member, text="Mention the SSO discount")
    start_worker()
    status_of(run, RunStatus.WAITING_FOR_HUMAN)
    assert "Mention the SSO discount" in ApprovalRequest.objects.get(run=run).arguments["body"]
    assert RunEvent.objects.filter(run=run, type="instruction.applied").count() == 1


def test_the_step_budget_stops_a_run_with_a_stated_reason(cast, renewals, start_worker):
    renewals.max_steps = 2
    renewals.save()
    start_worker()
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    status_of(run, RunStatus.FAILED)
    assert run.terminal_reason == "budget_exhausted: steps (2 of 2)"


def test_a_run_is_one_trace_of_steps_with_model_and_tool_calls_inside(cast, renewals, start_worker):
    start_worker(env={"SPAN_EXPORT_DELAY_MS": "100"})
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    status_of(run, RunStatus.WAITING_FOR_HUMAN)
    approval_decide(approval=ApprovalRequest.objects.get(run=run), approve=True, actor=cast.reviewer)
    status_of(run, RunStatus.COMPLETED)
    calls, tool_calls = ModelCall.objects.filter(run=run).count(), ToolInvocation.objects.filter(run=run).count()

    def all_stored():  # each worker process exports its own batches, so they land in any order
        stored = Span.objects.for_tenant(cast.acme).filter(run=run)
        return (stored.filter(kind="run").exists() and stored.filter(kind="model").count() == calls
                and stored.filter(kind="tool").count() == tool_calls)
    wait_for(all_stored, 15, message="the run's spans to be stored")

    spans = list(Span.objects.for_tenant(cast.acme).filter(run=run).order_by("started_at"))
    assert {s.trace_id for s in spans} == {run.trace_id}
    by_kind = {kind: [s for s in spans if s.kind == kind] for kind in ("run", "step", "model", "tool")}
    [root] = by_kind["run"]
    assert root.parent_span_id == "" and root.name == f"invoke_agent {renewals.name}" and root.status == "unset"
    assert all(s.parent_span_id == root.span_id for s in by_kind["step"])
    step_ids = {s.span_id for s in by_kind["step"]}
    assert all(s.parent_span_id in step_ids for s in by_kind["model"] + by_kind["tool"])

    calls = list(ModelCall.objects.filter(run=run).order_by("step", "attempt"))
    assert len(by_kind["model"]) == len(calls)
    for span, call in zip(by_kind["model"], calls, strict=True):
        assert span.attributes["gen_ai.operation.name"] == "chat"
        assert span.attributes["gen_ai.provider.name"] == "demo"
        assert span.attributes["gen_ai.usage.input_tokens"] == call.input_tokens
        assert span.attributes["gen_ai.usage.output_tokens"] == call.output_tokens
    tools = sorted(s.attributes["gen_ai.tool.name"] for s in by_kind["tool"])
    assert tools == sorted(ToolInvocation.objects.filter(run=run).values_list("tool", flat=True))
    assert "email.send" in tools
    calls_inside = by_kind["model"] + by_kind["tool"]
    assert root.started_at <= spans[0].started_at and root.ended_at >= max(s.ended_at for s in calls_inside)


def test_pause_takes_effect_at_the_step_boundary_and_resume_carries_on(cast, start_worker):
    looper = make_looper(cast.acme, model="demo:noop-200ms", max_steps=100)
    start_worker()
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 12 times", requested_by=cast.member)
    wait_for(lambda: ToolInvocation.objects.filter(run=run).count() >= 2, 30, message="a few steps")

    run_pause(run=run, actor=cast.member)
    status_of(run, RunStatus.PAUSED)
    assert run.control_by == cast.member and run.control_at is not None
    done_at_pause = ToolInvocation.objects.filter(run=run).count()
    time.sleep(1)  # five model-call lengths: a paused run takes no step
    assert ToolInvocation.objects.filter(run=run).count() == done_at_pause
    assert RunEvent.objects.filter(run=run, type="status", payload__to="paused", payload__by="max").exists()

    run_resume(run=run, actor=cast.member)
    assert status_of(run, RunStatus.COMPLETED, RunStatus.FAILED) == RunStatus.COMPLETED
    assert ToolInvocation.objects.filter(run=run).count() == 12
    assert_gapless(run)
