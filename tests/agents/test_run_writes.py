"""Who writes a run row: a transaction holding its lock, through run_write, and only the columns it
changed — so a change made another way in the same transaction is not overwritten with a stale value."""


import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from agents.events import emit
from agents.models import Run, RunEvent
from agents.services import RunError, run_add_instruction, run_cancel, run_locked, run_start
from tests.conftest import behind_a_lock
from tests.factories import advance, make_looper


def test_a_column_changed_outside_the_write_set_survives_the_runs_write(cast):
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    with run_locked(tenant=cast.acme, run_id=run.pk) as locked:
        Run.objects.for_tenant(cast.acme).filter(pk=run.pk).update(answer="set by another app")  # e.g. a hook
        locked.last_action = "noted"
        emit(locked, "note", {})
    run.refresh_from_db()
    assert run.answer == "set by another app"
    assert run.last_action == "noted" and RunEvent.objects.filter(run=run, type="note").count() == 1


def test_a_locked_run_nothing_changed_on_writes_nothing(cast):
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    with CaptureQueriesContext(connection) as queries, run_locked(tenant=cast.acme, run_id=run.pk):
        pass
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("UPDATE", "WITH"))]


def test_a_run_read_without_its_lock_cannot_be_written(cast):
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    unlocked = Run.objects.for_tenant(cast.acme).get(pk=run.pk)
    try:
        emit(unlocked, "note", {})
    except AttributeError:
        pass
    else:
        raise AssertionError("an unlocked run took an event")


# --- A person's instruction: one statement (run_store.run_instruction_add) ----------------------------------


def test_an_instruction_to_an_ended_run_is_refused_as_before_and_writes_nothing(cast):
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    run_cancel(run=run, actor=cast.member)
    before = Run.objects.get(pk=run.pk)
    with pytest.raises(RunError, match=r"^The run is already cancelled\.$"):
        run_add_instruction(run=run, actor=cast.member, text="too late")
    after = Run.objects.get(pk=run.pk)
    assert (after.inbox, after.event_seq) == (before.inbox, before.event_seq)
    assert not RunEvent.objects.filter(run=run, type="instruction.added").exists()


def test_an_instruction_to_another_tenant_s_run_is_no_such_run(cast):
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    elsewhere = Run.objects.get(pk=run.pk)
    elsewhere.tenant_id = cast.globex.pk  # a run number guessed from another tenant
    with pytest.raises(Run.DoesNotExist):
        run_add_instruction(run=elsewhere, actor=cast.member, text="not yours")
    assert Run.objects.get(pk=run.pk).inbox == []
    assert not RunEvent.objects.filter(run=run, type="instruction.added").exists()


def test_an_instruction_inside_a_caller_s_transaction_commits_with_it_or_not_at_all(cast):
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    with pytest.raises(RuntimeError), transaction.atomic():
        run_add_instruction(run=run, actor=cast.member, text="never kept")
        raise RuntimeError("the caller fails afterwards")
    assert Run.objects.get(pk=run.pk).inbox == []
    assert not RunEvent.objects.filter(run=run, type="instruction.added").exists()
    with transaction.atomic():
        added = run_add_instruction(run=run, actor=cast.member, text="kept")
    assert [item["text"] for item in Run.objects.get(pk=run.pk).inbox] == ["kept"]
    assert RunEvent.objects.get(run=run, type="instruction.added").seq == added.event_seq


@pytest.mark.django_db(transaction=True)
def test_an_instruction_added_while_a_step_consumes_the_inbox_is_neither_lost_nor_repeated(cast):
    """A step holds the run's lock, gives the inbox's instructions to the model and empties it; an instruction
    sent meanwhile waits for that commit and lands in the emptied inbox, numbered after the step's events; the
    next step applies it once."""
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    run_add_instruction(run=run, actor=cast.member, text="first")
    with run_locked(tenant=cast.acme, run_id=run.pk) as locked:  # as the step's boundary does (services/step.py)
        for item in locked.inbox:
            emit(locked, "instruction.applied", item)
        locked.inbox = []
        emit(locked, "note", {"text": "the step goes on"})
        second = behind_a_lock(lambda: run_add_instruction(run=run, actor=cast.member, text="second"),
                               message="the instruction to wait for the step's lock")
    sent = second()

    stored = Run.objects.get(pk=run.pk)
    assert [item["text"] for item in stored.inbox] == ["second"]
    events = list(RunEvent.objects.filter(run=run).values_list("seq", "type"))
    assert [seq for seq, _ in events] == list(range(1, stored.event_seq + 1))
    assert events[-3:] == [(stored.event_seq - 2, "instruction.applied"), (stored.event_seq - 1, "note"),
                           (stored.event_seq, "instruction.added")]
    assert sent.event_seq == stored.event_seq

    advance(run)
    applied = [e.payload["text"] for e in RunEvent.objects.filter(run=run, type="instruction.applied")]
    assert applied == ["first", "second"]
    assert Run.objects.get(pk=run.pk).inbox == []
