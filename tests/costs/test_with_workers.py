"""Real workers: ledger rows are never doubled by crashes or retries (kill -9 mid-run), rollups still
equal the ledger, and two runs racing at a budget's edge overshoot by at most one call each."""

import random
import signal
import time
from decimal import Decimal

from django.db.models import Count, Max, Sum

from agents.models import ModelCall, Run, RunStatus
from agents.services import run_start
from costs.models import Budget, LedgerEntry
from costs.services import budget_save
from tests.conftest import wait_for
from tests.costs.test_ledger import assert_rollups_equal_ledger
from tests.factories import make_looper

FLAKY = {"PROCTOR_EXTRA_APPS": "tests.costs_probe", "MODEL_BACKOFF_SECONDS": "0.01", "RUN_LEASE_SECONDS": "2",
         "RUN_SWEEP_SECONDS": "1", "RUN_SWEEP_AFTER_SECONDS": "2"}


def finished(runs):
    return all(run.status in (RunStatus.COMPLETED, RunStatus.FAILED)
               for run in Run.objects.filter(pk__in=[r.pk for r in runs]))


def test_kills_and_retries_never_double_a_ledger_row(cast, start_worker):
    agent = make_looper(cast.acme, model="flaky:gpt-4o-mini")
    runs = [run_start(tenant=cast.acme, agent=agent, goal=f"Call noop {n} times", requested_by=cast.member)
            for n in (3, 5, 8, 4, 6, 7)]
    rng = random.Random(11)
    for round_number in range(3):
        worker = start_worker(f"k{round_number}", concurrency=2, beat=True, env=FLAKY)
        time.sleep(rng.uniform(0.4, 1.5))
        worker.stop(signal.SIGKILL)
    start_worker("final", concurrency=2, beat=True, env=FLAKY)
    wait_for(lambda: finished(runs), 120, interval=0.5, message="every run to finish after the kills")

    assert not LedgerEntry.objects.values("run_id", "step", "attempt").annotate(n=Count("id")).filter(n__gt=1).exists()
    for run in Run.objects.filter(pk__in=[r.pk for r in runs]):
        answered = ModelCall.objects.filter(run=run, status="ok")
        assert LedgerEntry.objects.filter(run_id=run.pk).count() == answered.count()
        ledger = LedgerEntry.objects.filter(run_id=run.pk).aggregate(usd=Sum("amount_usd"))["usd"]
        assert abs(ledger - run.cost_usd) <= answered.count() * Decimal("0.0000005")
    assert LedgerEntry.objects.filter(attempt__gt=1).exists()  # the flaky provider made the gateway retry
    assert_rollups_equal_ledger()


def test_two_runs_racing_at_the_budgets_edge_overshoot_by_at_most_one_call_each(cast, start_worker):
    agent = make_looper(cast.acme, model="demo:noop-200ms")
    limit = Decimal("0.0003")
    budget_save(tenant=cast.acme, actor=cast.finance,
                budget=Budget(name="Edge", limit_usd=limit, thresholds=[100], action="stop"))
    runs = [run_start(tenant=cast.acme, agent=agent, goal="Call noop 60 times", requested_by=cast.member)
            for _ in range(2)]
    start_worker("race", concurrency=2, env={"MODEL_MAX_OUTPUT_TOKENS": "5"})
    wait_for(lambda: finished(runs), 120, interval=0.5, message="both runs to stop at the budget")

    spent = LedgerEntry.objects.aggregate(usd=Sum("amount_usd"), biggest=Max("amount_usd"))
    for run in Run.objects.filter(pk__in=[r.pk for r in runs]):
        assert run.terminal_reason == "budget_exhausted: Edge"
    assert spent["usd"] <= limit + 2 * spent["biggest"]
    assert spent["usd"] > limit - 2 * spent["biggest"] - Decimal("0.00002")  # the budget was used, not refused early
