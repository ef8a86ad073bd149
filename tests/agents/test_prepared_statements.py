"""The step's hot statements are prepared once per connection (console/db.py); behind a pooler that cannot
keep prepared statements, DATABASE_PREPARED_STATEMENTS=0 runs the same steps unprepared."""

import pytest
from django.db import connection

from agents.services import run_advance, run_start
from tests.factories import make_looper

CLAIM, RUN_WRITE = "UPDATE agents_run r SET lease_owner", "UPDATE agents_run SET"


def executions() -> dict[str, int]:
    """Statement text → how often this connection ran it prepared."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return {" ".join(text.split()): count for text, count in cursor.fetchall()}


def ran(counts: dict[str, int], part: str) -> int:
    return sum(count for text, count in counts.items() if part in text)


@pytest.fixture
def looper(cast):
    return make_looper(cast.acme)


def test_a_runs_claim_and_writes_are_prepared_and_reused(cast, looper, settings):
    settings.RUN_TURN_SECONDS = 60
    before = executions()
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    assert run_advance(run_id=run.pk, worker="w1") == "completed"
    after = executions()
    assert ran(after, CLAIM) == ran(before, CLAIM) + 1
    writes = ran(after, RUN_WRITE) - ran(before, RUN_WRITE)
    assert writes >= 6  # a statement at the end of each of the run's transactions
    # Reused, not prepared anew each time: a few shapes (which rows and columns a transaction writes).
    assert sum(1 for text in after if RUN_WRITE in text and text not in before) < writes


def test_with_prepared_statements_off_the_same_run_completes_unprepared(cast, looper, settings):
    settings.RUN_TURN_SECONDS = 60
    settings.DATABASE_PREPARED_STATEMENTS = False
    before = executions()
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    assert run_advance(run_id=run.pk, worker="w1") == "completed"
    assert executions() == before
    run.refresh_from_db()
    assert run.status == "completed" and run.step == 4


def test_a_step_commits_with_its_last_write_and_a_failed_commit_keeps_nothing(transactional_db, cast, looper):
    """A step's transaction sends its last statement and COMMIT in one round trip. A COMMIT that fails (here a
    deferred foreign key: a row for a run that does not exist) raises inside the block: nothing of the
    transaction stays, its on-commit hooks never run, and the connection serves the next transaction."""
    from django.db import IntegrityError, transaction

    from agents.models import RunEvent
    from agents.run_store import row_add, run_lock_in_tenant, run_write_and_commit

    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop once", requested_by=cast.member)
    events, told = RunEvent.objects.filter(run=run).count(), []
    with pytest.raises(IntegrityError), transaction.atomic():
        locked = run_lock_in_tenant(run_id=run.pk, tenant_id=cast.acme.pk)
        locked.writes.event("note", {"text": "never kept"})
        row_add(locked, RunEvent(run_id=10**12, seq=1, type="note", payload={}))
        transaction.on_commit(lambda: told.append("failed one"))
        run_write_and_commit(locked)
    assert RunEvent.objects.filter(run=run).count() == events and told == []

    with transaction.atomic():
        locked = run_lock_in_tenant(run_id=run.pk, tenant_id=cast.acme.pk)
        locked.writes.event("note", {"text": "kept"})
        transaction.on_commit(lambda: told.append("kept one"))
        run_write_and_commit(locked)
    assert RunEvent.objects.filter(run=run, type="note").get().payload == {"text": "kept"}
    assert told == ["kept one"]
    assert run_advance(run_id=run.pk, worker="w1") in {"completed", "tool_done", "model_next"}


def test_a_person_s_change_commits_with_its_write_but_never_an_outer_transaction_early(transactional_db, cast, looper):
    """run_locked (an instruction, a pause, a decision's outcome) sends its write with the COMMIT when it is the
    whole transaction; inside a caller's transaction without a savepoint (a decision) it commits nothing itself:
    the caller's failure afterwards keeps nothing."""
    from django.db import transaction

    from agents.models import RunEvent
    from agents.services import run_add_instruction
    from agents.services.control import run_locked

    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop once", requested_by=cast.member)
    run_add_instruction(run=run, actor=cast.member, text="kept")
    assert RunEvent.objects.filter(run=run, type="instruction.added").count() == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        with run_locked(tenant=cast.acme, run_id=run.pk, savepoint=False) as locked:
            locked.writes.event("note", {"text": "never kept"})
        raise RuntimeError("the caller fails after the run's write")
    assert not RunEvent.objects.filter(run=run, type="note").exists()
