"""Budgets: a stopping budget ends runs before the model call it cannot pay for, thresholds alert
once per period, alert-only budgets never stop, and periods follow the tenant's timezone."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum

from agents.models import Agent
from agents.services import run_start
from console.models import AuditEvent
from costs.budgets import period_start
from costs.models import Budget, BudgetAlert, LedgerEntry
from costs.services import budget_save, cost_timezone_set
from tests.factories import advance, make_looper


@pytest.fixture(autouse=True)
def small_estimates(settings):
    settings.MODEL_MAX_OUTPUT_TOKENS = 20
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"


def budget(cast, **fields):
    fields = {"name": "Acme monthly", "thresholds": [50, 80, 100], **fields}
    return budget_save(tenant=cast.acme, actor=cast.finance, budget=Budget(**fields))


def loop(cast, agent, times, user=None):
    run = run_start(tenant=cast.acme, agent=agent, goal=f"Call noop {times} times", requested_by=user or cast.member)
    for _ in range(4):  # advance() stops after 20 steps
        run = advance(run)
    return run


def tokens_of(run):
    return LedgerEntry.objects.filter(run_id=run.pk).aggregate(n=Sum("input_tokens") + Sum("output_tokens"))["n"] or 0


def test_a_stopping_budget_ends_the_run_before_its_next_model_call(cast):
    budget(cast, limit_tokens=600, action="stop")
    run = loop(cast, make_looper(cast.acme), 30)
    assert run.status == "failed" and run.terminal_reason == "budget_exhausted: Acme monthly"
    assert 0 < tokens_of(run) <= 600
    # The tenant's next run gets what is left at most, then stops too.
    again = loop(cast, Agent.objects.get(slug="looper"), 30)
    assert again.terminal_reason == "budget_exhausted: Acme monthly"
    assert tokens_of(run) + tokens_of(again) <= 600


def test_thresholds_alert_once_per_period_and_alert_only_never_stops(cast):
    watched = budget(cast, limit_tokens=500, action="alert")
    agent = make_looper(cast.acme)
    first = loop(cast, agent, 6)
    second = loop(cast, agent, 6)
    assert first.status == second.status == "completed"
    alerts = list(BudgetAlert.objects.filter(budget=watched).values_list("threshold", flat=True).order_by("threshold"))
    assert alerts == [50, 80, 100]  # each once, however many calls went past it
    assert AuditEvent.objects.filter(tenant=cast.acme, verb="budget.threshold").count() == 3


def test_a_run_budget_applies_to_each_run_and_an_agent_budget_to_its_agent_only(cast):
    budget(cast, name="Per run", scope="run", limit_usd=Decimal("0.00004"), action="stop")
    looper = make_looper(cast.acme)
    one, two = loop(cast, looper, 30), loop(cast, looper, 30)
    assert one.terminal_reason == two.terminal_reason == "budget_exhausted: Per run"
    assert one.cost_usd <= Decimal("0.00004") and two.cost_usd <= Decimal("0.00004")

    Budget.objects.all().delete()
    other = Agent.objects.create(tenant=cast.acme, name="Other", slug="other", model="demo:noop", tools=["noop"],
                                 plan_mode=False)
    budget(cast, name="Looper only", scope="agent", agent=looper, limit_tokens=1, action="stop")
    assert loop(cast, other, 2).status == "completed"
    assert loop(cast, looper, 2).terminal_reason == "budget_exhausted: Looper only"


def test_a_user_budget_stops_only_that_persons_runs(cast):
    budget(cast, name="Max's", scope="user", user=cast.member, limit_tokens=1, action="stop")
    looper = make_looper(cast.acme)
    assert loop(cast, looper, 1, user=cast.admin).status == "completed"
    assert loop(cast, looper, 1, user=cast.member).terminal_reason == "budget_exhausted: Max's"


def test_periods_are_counted_in_the_tenants_timezone(cast):
    late_evening_utc = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # already 1 December in Tokyo
    start, key = period_start("month", ZoneInfo("Asia/Tokyo"), late_evening_utc)
    assert key == "2026-12" and start == datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
    start, key = period_start("day", ZoneInfo("America/New_York"), late_evening_utc)
    assert key == "2026-11-30" and start.utcoffset().total_seconds() == -5 * 3600

    cost_timezone_set(tenant=cast.acme, actor=cast.admin, zone="Asia/Tokyo")
    budget(cast, limit_tokens=1, action="stop")
    assert loop(cast, make_looper(cast.acme), 2).status == "failed"


def ledger_row(tenant, at, tokens, usd, number):
    from costs.ledger import Entry, ledger_write

    ledger_write([Entry(tenant_id=tenant.pk, at=at, source_key=f"model:test:{number}", kind="model", status="ok",
                        user_id=None, run_id=None, step=1, attempt=1, agent_id=None, agent_version=0, provider="openai",
                        model="gpt-4o-mini", tool="", input_tokens=tokens, cache_read_tokens=0, cache_write_tokens=0,
                        output_tokens=0, reasoning_tokens=0, amount_usd=Decimal(usd), priced=True, simulated=False,
                        cache_savings_usd=Decimal(0), price_source="test", price_source_version="", rates={},
                        tier="", price={})])


def test_a_day_in_a_zone_of_half_hours_starts_at_its_local_midnight(cast):
    """Kolkata is UTC+05:30: its day starts at 18:30 UTC, in the middle of an hourly rollup."""
    from costs.budgets import spent

    kolkata = ZoneInfo("Asia/Kolkata")
    ledger_row(cast.acme, datetime(2026, 11, 27, 18, 10, tzinfo=UTC), 100, "1.00", 1)  # 23:40 the day before
    ledger_row(cast.acme, datetime(2026, 11, 27, 18, 45, tzinfo=UTC), 10, "0.10", 2)  # 00:15
    ledger_row(cast.acme, datetime(2026, 11, 27, 20, 0, tzinfo=UTC), 1, "0.01", 3)  # 01:30
    daily = budget(cast, name="Daily", period="day", limit_tokens=50, action="stop")
    monthly = budget(cast, name="Monthly", period="month", limit_tokens=500, action="stop")
    now = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata
    amount, key = spent(daily, run_id=None, zone=kolkata, now=now)
    assert (amount.usd, amount.tokens, key) == (Decimal("0.11"), 11, "2026-11-28")  # not the 100 tokens of 23:40
    assert spent(monthly, run_id=None, zone=kolkata, now=now)[0].tokens == 111
    # A zone of whole hours reads the rollups alone, as before.
    assert spent(daily, run_id=None, zone=ZoneInfo("UTC"), now=datetime(2026, 11, 27, 23, 0, tzinfo=UTC))[0].tokens == 111
