"""One step, in process: what survives a step that dies half-way."""

from datetime import timedelta

import pytest
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, Run
from agents.services import run_add_instruction, run_advance, run_start, runs_sweep
from approvals.services import approval_decide
from demo.seed import seed_demo_systems
from tests.factories import advance, make_looper


@pytest.fixture
def run(cast):
    seed_demo_systems(cast.acme)
    agent = Agent.objects.get(tenant=cast.acme, slug="renewals")
    return run_start(tenant=cast.acme, agent=agent, goal="Prepare the renewal plan for ACME-042", requested_by=cast.member)


def conversation(run) -> list[dict]:
    return [row.message for row in run.messages.order_by("seq")]


def test_an_instruction_is_not_lost_when_the_step_dies_during_the_model_call(cast, run, monkeypatch):
    run_add_instruction(run=run, actor=cast.member, text="Mention the SSO discount")

    def dies(**kwargs):
        raise RuntimeError("worker died mid-call")

    monkeypatch.setattr("agents.services.step.complete", dies)
    with pytest.raises(RuntimeError):
        run_advance(run_id=run.pk, worker="w1")
    monkeypatch.undo()
    Run.objects.filter(pk=run.pk).update(lease_expires_at=None)  # as if the lease had expired

    run_advance(run_id=run.pk, worker="w2")
    texts = [m.get("text") for m in conversation(run) if m["role"] == "user"]
    assert "Instruction from operator: Mention the SSO discount" in texts


def test_a_step_whose_lease_was_taken_over_during_the_model_call_writes_nothing(cast, run, monkeypatch):
    """The fenced lock (sent with its transaction's BEGIN in one round trip) finds the run under another fence:
    the step ends lease_lost, none of its rows commit, and the connection goes on working."""
    from agents.models import ModelCall
    from agents.services import step

    called = step.complete

    def taken_over(**kwargs):
        Run.objects.filter(pk=run.pk).update(fence=models.F("fence") + 1)  # another worker claimed it meanwhile
        return called(**kwargs)

    monkeypatch.setattr("agents.services.step.complete", taken_over)
    assert run_advance(run_id=run.pk, worker="w1") == "lease_lost"
    assert not ModelCall.objects.filter(run=run).exists()
    assert Run.objects.get(pk=run.pk).step == 0


def test_cancelling_a_run_whose_worker_died_takes_effect_at_once(cast, run):
    from datetime import timedelta

    from django.utils import timezone

    from agents.services import run_cancel

    Run.objects.filter(pk=run.pk).update(lease_owner="dead-worker:1", lease_expires_at=timezone.now() - timedelta(seconds=5))
    run_cancel(run=run, actor=cast.member)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.terminal_reason == "cancelled by max"


def test_a_tool_that_calls_out_runs_after_its_call_is_checkpointed(cast, monkeypatch):
    """Not every tool's effects can roll back with the step: those run in a transaction of their own,
    after the reply that proposed them is committed."""
    import dataclasses

    from agents.models import ToolInvocation
    from agents.tools import REGISTRY

    seen_pending = []

    def calls_out(context, args):
        latest = Run.objects.get(pk=context.run.pk).checkpoints.order_by("-step").first()
        seen_pending.append(latest.state["pending_call"]["tool"])
        return {"n": args.n}

    monkeypatch.setitem(REGISTRY, "noop", dataclasses.replace(REGISTRY["noop"], transactional=False, function=calls_out))
    agent = make_looper(cast.acme)
    run = run_start(tenant=cast.acme, agent=agent, goal="Call noop 2 times", requested_by=cast.member)
    outcomes = [run_advance(run_id=run.pk, worker="w1") for _ in range(3)]
    assert outcomes == ["tool_done", "tool_done", "completed"]
    assert seen_pending == ["noop", "noop"]  # the pending call was in the checkpoint when the tool ran
    assert ToolInvocation.objects.filter(run=run, status="ok").count() == 2


def test_the_sweeper_resends_a_stranded_run_once_not_every_sweep(run, settings):
    """A queued run nobody took (its task lost, or waiting in a busy queue) is sent again; the next
    sweep leaves it alone until it has sat untouched that long again."""
    assert runs_sweep() == 0  # just started: its task is on its way
    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(seconds=settings.RUN_SWEEP_AFTER_SECONDS + 1))
    assert runs_sweep() == 1
    assert runs_sweep() == 0


def test_a_decided_call_runs_in_the_steps_first_transaction(cast, run):
    """After an approval the step claims the lease, then runs the call with the run row locked once."""
    run = advance(run)
    approval_decide(approval=run.approval_requests.get(), approve=True, actor=cast.reviewer)
    with CaptureQueriesContext(connection) as queries:
        assert run_advance(run_id=run.pk, worker="w1") == "tool_done"
    locks = [q["sql"] for q in queries.captured_queries if "FOR NO KEY UPDATE" in q["sql"] and "agents_run" in q["sql"]]
    assert len(locks) == 1, locks
