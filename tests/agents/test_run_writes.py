"""Who writes a run row: a transaction holding its lock, through run_write, and only the columns it
changed — so a change made another way in the same transaction is not overwritten with a stale value."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.events import emit
from agents.models import Run, RunEvent
from agents.services import run_locked, run_start
from tests.factories import make_looper


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
