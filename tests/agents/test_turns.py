"""Turns: a worker that holds a run's lease takes its next steps itself while its turn lasts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import ModelCall, Run, RunEvent, ToolInvocation
from agents.services import run_advance, run_pause, run_resume, run_start
from tests.factories import make_looper


@pytest.fixture
def looper(cast):
    return make_looper(cast.acme)


def statuses(run) -> list[tuple[str, str]]:
    return [(e.payload["from"], e.payload["to"]) for e in RunEvent.objects.filter(run=run, type="status").order_by("seq")]


def test_a_worker_takes_a_runs_steps_one_after_another_within_its_turn(cast, looper, settings):
    settings.RUN_TURN_SECONDS = 60
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    assert run_advance(run_id=run.pk, worker="w1") == "completed"
    run.refresh_from_db()
    assert run.fence == 1, "claimed once, for the whole run"
    assert ToolInvocation.objects.filter(run=run, status="ok").count() == 3
    assert ModelCall.objects.filter(run=run).count() == 4
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == list(range(1, run.event_seq + 1))
    # Every step still says it went back to the queue and on to the model, as it does between tasks.
    assert statuses(run).count(("queued", "waiting_for_model")) == 4
    assert run.lease_owner == "" and run.lease_expires_at is None


def test_a_pause_asked_for_during_a_turn_stops_the_run_at_the_next_step(cast, looper, settings, monkeypatch):
    settings.RUN_TURN_SECONDS = 60
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    from agents.services import step as services

    model_call = services.complete

    def pause_during_the_first_call(**kwargs):
        if not ModelCall.objects.filter(run=run).exists():
            run_pause(run=run, actor=cast.member)  # while the worker holds the lease: asked, not yet done
        return model_call(**kwargs)

    monkeypatch.setattr(services, "complete", pause_during_the_first_call)
    assert run_advance(run_id=run.pk, worker="w1") == "paused"
    run.refresh_from_db()
    assert run.status == "paused" and run.control_by == cast.member
    assert ToolInvocation.objects.filter(run=run).count() == 1, "the step in flight finished; no other began"
    assert ModelCall.objects.filter(run=run).count() == 1

    run_resume(run=run, actor=cast.member)
    assert run_advance(run_id=run.pk, worker="w1") == "completed"
    assert ToolInvocation.objects.filter(run=run).count() == 3


def test_when_the_turn_is_over_the_run_goes_back_to_the_queue(cast, looper, settings):
    settings.RUN_TURN_SECONDS = 0
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    assert run_advance(run_id=run.pk, worker="w1") == "tool_done"
    run = Run.objects.get(pk=run.pk)
    assert run.status == "queued" and run.lease_owner == "" and run.lease_expires_at is None
    assert run_advance(run_id=run.pk, worker="w2") == "tool_done", "any worker may take the next turn"


def test_a_turn_goes_on_while_no_other_task_waits_for_the_worker(cast, looper, settings):
    """Handing a run back when nobody else wants the worker costs an enqueue, the broker and a claim
    for the same worker to take it again; the run keeps its turn instead. With a task waiting, it hands back."""
    import time

    from django.conf import settings as django_settings

    from agents.tasks import run_step
    from console.health import redis_client

    broker = redis_client(url=django_settings.CELERY_BROKER_URL)
    broker.delete("celery")
    settings.RUN_TURN_SECONDS = 0.02
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 20 times", requested_by=cast.member)
    started = time.monotonic()
    assert run_advance(run_id=run.pk, worker="w1") == "completed"
    assert time.monotonic() - started > 0.02, "the run outlasted one turn"
    assert Run.objects.get(pk=run.pk).fence == 1, "kept, not handed back and claimed again"

    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 20 times", requested_by=cast.member)
    run_step.delay(0)  # another task waits for a worker (run 0: nobody's)
    try:
        assert run_advance(run_id=run.pk, worker="w1") == "tool_done", "handed back at the end of its turn"
    finally:
        broker.delete("celery")


# --- A reply's transaction does not lock the run first; a change made meanwhile is never lost ----------------


def during_model_call(monkeypatch, number: int, act) -> list[int]:
    """``act()`` while the step's ``number``-th model call is being made (the worker holds the lease, the
    run is unlocked); returns the calls' numbers as they are made."""
    from agents.services import step as services

    model_call, calls = services.complete, []

    def acting(**kwargs):
        calls.append(len(calls) + 1)
        if len(calls) == number:
            act()
        return model_call(**kwargs)

    monkeypatch.setattr(services, "complete", acting)
    return calls


def run_locks(queries) -> int:
    """How many of the captured statements locked the run (run_store.run_lock)."""
    return sum("FOR NO KEY UPDATE" in query["sql"] for query in queries.captured_queries)


def test_within_a_turn_a_step_s_reply_is_written_without_locking_the_run_first(cast, looper, settings):
    settings.RUN_TURN_SECONDS = 60
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    version = Run.objects.get(pk=run.pk).version
    with CaptureQueriesContext(connection) as queries:
        assert run_advance(run_id=run.pk, worker="w1") == "completed"
    assert run_locks(queries) == 1, "only the turn's first boundary locks the run; the four replies' writes check it"
    run.refresh_from_db()
    assert run.version == version + 5, "each transaction raised it: the boundary and the four replies"
    assert ModelCall.objects.filter(run=run).count() == 4


def test_an_instruction_added_while_the_model_thinks_is_applied_once_and_the_model_is_not_asked_again(
        cast, looper, settings, monkeypatch):
    from agents.models import ConversationMessage
    from agents.services import run_add_instruction

    settings.RUN_TURN_SECONDS = 60
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    calls = during_model_call(monkeypatch, 2, lambda: run_add_instruction(run=run, actor=cast.member, text="be brief"))
    with CaptureQueriesContext(connection) as queries:
        assert run_advance(run_id=run.pk, worker="w1") == "completed"
    assert run_locks(queries) == 2, "the turn's first boundary, and the second reply applied again, locked"
    run.refresh_from_db()
    assert calls == [1, 2, 3, 4] and ModelCall.objects.filter(run=run).count() == 4
    assert ToolInvocation.objects.filter(run=run, status="ok").count() == 3
    applied = RunEvent.objects.filter(run=run, type="instruction.applied")
    assert [e.payload["text"] for e in applied] == ["be brief"] and run.inbox == []
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == list(range(1, run.event_seq + 1))
    added = RunEvent.objects.get(run=run, type="instruction.added").seq
    assert added < applied.get().seq, "numbered before the step that applied it"
    told = [m for m in ConversationMessage.objects.filter(run=run).order_by("seq") if "be brief" in str(m.message)]
    assert len(told) == 1
    seqs = list(ConversationMessage.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 10)), "the goal, three calls and their results, the instruction, the answer"


def test_a_tool_made_risky_while_the_model_thinks_is_not_run_without_a_person(cast, looper, settings, monkeypatch):
    from agents.tool_settings import tool_risk_set
    from agents.tools import REGISTRY

    settings.RUN_TURN_SECONDS = 60
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    calls = during_model_call(monkeypatch, 2, lambda: tool_risk_set(tenant=cast.acme, spec=REGISTRY["noop"], risk=3,
                                                                    actor=cast.admin))
    assert run_advance(run_id=run.pk, worker="w1") == "waiting_for_human"
    run.refresh_from_db()
    assert calls == [1, 2] and ToolInvocation.objects.filter(run=run).count() == 1, "the second call waits"
    assert run.approval_requests.get().risk == 3


@pytest.mark.django_db(transaction=True)
def test_an_instruction_committed_by_another_connection_while_the_model_thinks_is_kept(cast, looper, settings,
                                                                                       monkeypatch):
    """As from a web process: the instruction commits on its own connection, taking the event number the
    step's unlocked write would have used; the write fails whole and the reply is applied again, locked."""
    import threading

    from django.db import connections

    from agents.services import run_add_instruction

    def from_elsewhere():
        def send():
            try:
                run_add_instruction(run=run, actor=cast.member, text="from the web")
            finally:
                connections.close_all()

        thread = threading.Thread(target=send)
        thread.start()
        thread.join(10)

    settings.RUN_TURN_SECONDS = 60
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 2 times", requested_by=cast.member)
    calls = during_model_call(monkeypatch, 1, from_elsewhere)
    assert run_advance(run_id=run.pk, worker="w1") == "completed"
    run.refresh_from_db()
    assert calls == [1, 2, 3] and ToolInvocation.objects.filter(run=run, status="ok").count() == 2
    assert [e.payload["text"] for e in RunEvent.objects.filter(run=run, type="instruction.applied")] == ["from the web"]
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == list(range(1, run.event_seq + 1))
