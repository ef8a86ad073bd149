"""The ledger: one priced row per model attempt and costed tool call, its snapshot kept, unpriced
calls flagged, and the hourly rollups always equal to it."""

from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.usage import RequestUsage

from agents.gateway import MODEL_PRICING, register_model_provider
from agents.models import ModelCall
from agents.services import run_start
from costs.models import HourlyCost, LedgerEntry
from costs.selectors import rollup_totals
from tests.factories import advance, make_looper


def loop(cast, agent, times=3):
    run = run_start(tenant=cast.acme, agent=agent, goal=f"Call noop {times} times", requested_by=cast.member)
    return advance(run)


def test_each_model_call_is_priced_once_at_a_simulated_rate_with_its_snapshot(cast, settings):
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"
    run = loop(cast, make_looper(cast.acme))
    assert run.status == "completed"
    rows = list(LedgerEntry.objects.for_tenant(cast.acme).order_by("step"))
    calls = ModelCall.objects.filter(run=run, status="ok")
    assert len(rows) == calls.count() == 4  # three noop calls and the final answer
    first = rows[0]
    assert first.kind == "model" and first.simulated and first.priced
    assert first.user_id == cast.member.pk and first.agent_id == run.agent_id and first.run_id == run.pk
    assert first.price["simulated_as"] == "openai:gpt-4o-mini" and first.price_source == "genai-prices"
    assert first.rates["input_mtok"] == "0.15" and first.rates["output_mtok"] == "0.6"
    expected = (Decimal(first.input_tokens) * Decimal("0.15") + Decimal(first.output_tokens) * Decimal("0.6")) / 1_000_000
    assert first.amount_usd == expected > 0
    # The run's own total keeps six decimals per call; the ledger keeps the exact amounts.
    assert abs(sum(r.amount_usd for r in rows) - run.cost_usd) <= len(rows) * Decimal("0.0000005")


def test_a_call_keeps_the_price_it_was_charged_when_prices_change(cast, settings):
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"
    agent = make_looper(cast.acme)
    loop(cast, agent, 1)
    before = {row.pk: (row.amount_usd, row.rates) for row in LedgerEntry.objects.all()}
    settings.DEMO_PRICED_AS = "openai:gpt-4o"
    loop(cast, agent, 1)
    for row in LedgerEntry.objects.filter(pk__in=before):
        assert (row.amount_usd, row.rates) == before[row.pk]
    later = LedgerEntry.objects.exclude(pk__in=before).first()
    assert later.rates["input_mtok"] == "2.5" and later.price["simulated_as"] == "openai:gpt-4o"


def mystery_model(name):
    def reply(messages, info):
        return ModelResponse(parts=[TextPart("done")], usage=RequestUsage(input_tokens=120, output_tokens=30))
    return FunctionModel(reply, model_name=name)


@pytest.fixture
def mystery_provider():
    register_model_provider("mystery", mystery_model)
    yield
    from agents.gateway import MODEL_PROVIDERS

    MODEL_PROVIDERS.pop("mystery", None)
    MODEL_PRICING.pop("mystery", None)


def test_an_unknown_model_is_flagged_unpriced_and_counted_never_a_silent_zero(cast, mystery_provider):
    run = loop(cast, make_looper(cast.acme, model="mystery:house-model-7"), 1)
    row = LedgerEntry.objects.get(run_id=run.pk)
    assert not row.priced and row.amount_usd is None and row.input_tokens == 120
    assert "house-model-7" in row.price["reason"] or row.price["unpriced"]
    totals = rollup_totals(cast.acme)
    assert totals["unpriced_calls"] == 1 and totals["calls"] == 1


def test_rollups_equal_the_ledger_for_every_grouping(cast):
    agent = make_looper(cast.acme)
    for times in (1, 2, 3):
        loop(cast, agent, times)
    assert_rollups_equal_ledger()


def assert_rollups_equal_ledger():
    groupings = [(), ("agent_id",), ("user_id",), ("model",), ("tool",), ("agent_version",), ("provider", "model"),
                 ("kind",)]
    for keys in groupings:
        ledger = {tuple(row[k] or 0 if k.endswith("_id") else row[k] for k in keys): (row["usd"], row["n"]) for row in
                  LedgerEntry.objects.filter(current=True).values(*keys, "tenant").annotate(
                      usd=Sum("amount_usd"), n=Count("id")).values(*keys, "usd", "n")}
        rollup = {tuple(row[k] for k in keys): (row["usd"], row["n"]) for row in
                  HourlyCost.objects.values(*keys, "tenant").annotate(usd=Sum("amount_usd"), n=Sum("calls"))
                  .values(*keys, "usd", "n")}
        assert {k: (v[0] or Decimal(0), v[1]) for k, v in ledger.items()} == rollup, keys


def test_the_rebuild_command_gives_the_same_rollups(cast):
    from django.core.management import call_command

    agent = make_looper(cast.acme)
    loop(cast, agent, 2)
    before = list(HourlyCost.objects.order_by("id").values("hour", "model", "calls", "amount_usd", "input_tokens"))
    HourlyCost.objects.update(amount_usd=0, calls=99)  # drifted somehow
    call_command("costs_rebuild_rollups", "--tenant", "acme")
    after = list(HourlyCost.objects.order_by("id").values("hour", "model", "calls", "amount_usd", "input_tokens"))
    assert after == before
    assert_rollups_equal_ledger()


def test_a_tool_with_a_declared_cost_is_a_ledger_row_of_its_own(cast, monkeypatch):
    from dataclasses import replace

    from agents.tools import REGISTRY

    monkeypatch.setitem(REGISTRY, "noop", replace(REGISTRY["noop"], cost_usd=Decimal("0.002")))
    run = loop(cast, make_looper(cast.acme), 3)
    tools = LedgerEntry.objects.filter(run_id=run.pk, kind="tool")
    assert tools.count() == 3 and {row.tool for row in tools} == {"noop"}
    assert {(row.amount_usd, row.price_source, row.priced) for row in tools} == {
        (Decimal("0.002"), "declared by the tool", True)}
    by_tool = {row["tool"]: row["usd"] for row in HourlyCost.objects.values("tool").annotate(usd=Sum("amount_usd"))}
    assert by_tool["noop"] == Decimal("0.006")
    assert_rollups_equal_ledger()
    calls = LedgerEntry.objects.filter(run_id=run.pk, kind="model")
    models = sum(row.amount_usd for row in calls)  # exact; the run's total is kept at six decimals
    # the run's own cost counts what its tools declared
    assert abs(run.cost_usd - (models + Decimal("0.006"))) <= Decimal("0.0000005") * calls.count()
    assert run.cost_usd > models + Decimal("0.0059")


def test_the_run_page_says_when_calls_were_unpriced(cast, client_for, mystery_provider):
    from django.urls import reverse

    run = loop(cast, make_looper(cast.acme, model="mystery:house-model-7"), 1)
    page = client_for(cast.member).get(reverse("run_detail", args=["acme", run.number])).content.decode()
    assert "+ 1 unpriced call" in page


def test_a_steps_single_row_reaches_its_rollup_exactly_as_the_grouped_write_would(cast):
    """The step's fast path (one entry: its rollup row added without GROUP BY) and the grouped path give the same
    rollups, every column: a zero cost, an unpriced call (NULL amount), a retry, cache tokens, several rows on one
    rollup key, rows in other hours and on other local days (an hour that is another day in UTC and in Tokyo);
    an entry written again adds nothing."""
    from datetime import datetime, timedelta, timezone as dt_timezone
    from zoneinfo import ZoneInfo

    from django.db import connection

    from costs.ledger import LEDGER_CTES, Entry, _ledger_ctes

    tokyo = ZoneInfo("Asia/Tokyo")
    base = dict(tenant_id=cast.acme.pk, kind="model", status="ok", user_id=cast.member.pk, run_id=None, step=1,
                attempt=1, agent_id=None, agent_version=1, provider="openai", model="gpt-4o-mini", tool="",
                input_tokens=1000, cache_read_tokens=200, cache_write_tokens=50, output_tokens=300,
                reasoning_tokens=40, amount_usd=Decimal("0.0001234567"), priced=True, simulated=False,
                cache_savings_usd=Decimal("0.00001"), price_source="genai-prices", price_source_version="1",
                rates={}, tier="", price={})
    hour = datetime(2026, 3, 1, 14, 0, tzinfo=dt_timezone.utc)  # 23:00 in Tokyo; 15:00 is the next day there
    entries = [Entry(**{**base, **change}, at=at, source_key=f"k{n}") for n, (at, change) in enumerate([
        (hour + timedelta(minutes=1), {}),
        (hour + timedelta(minutes=2), {"attempt": 2}),  # the same rollup key: a retry
        (hour + timedelta(minutes=3), {"amount_usd": Decimal("0"), "cache_savings_usd": Decimal("0")}),
        (hour + timedelta(minutes=4), {"amount_usd": None, "priced": False, "cache_savings_usd": Decimal("0")}),
        (datetime(2026, 3, 2, 0, 30, tzinfo=tokyo), {"input_tokens": 7, "output_tokens": 0}),  # 15:30 UTC
        (hour + timedelta(days=1, minutes=59), {"simulated": True, "kind": "tool", "tool": "noop", "provider": "",
                                                "model": "", "input_tokens": 0, "output_tokens": 0}),
    ])]

    def write(ctes, batch):
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT 1", [_ledger_ctes(batch)[1][0]])

    def rollups():
        rows = HourlyCost.objects.values().order_by("hour", "kind", "simulated")
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]

    for entry in entries:  # step by step, each its own statement, as steps write them
        assert _ledger_ctes([entry])[0] is LEDGER_CTES[True]
        write(LEDGER_CTES[True], [entry])
    write(LEDGER_CTES[True], [entries[0]])  # the same entry again: already in the ledger, nothing added
    one_by_one = rollups()
    HourlyCost.objects.all().delete()
    LedgerEntry.objects.all().delete()
    assert _ledger_ctes(entries)[0] is LEDGER_CTES[False]
    write(LEDGER_CTES[False], entries)
    assert one_by_one == rollups()
    assert len(one_by_one) == 3 and one_by_one[0]["calls"] == 4 and one_by_one[0]["unpriced_calls"] == 1
    assert one_by_one[0]["retry_calls"] == 1 and one_by_one[0]["amount_usd"] == Decimal("0.0002469134")
    assert_rollups_equal_ledger()
