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
