"""Writing the ledger: the usage hook turns each priced thing a step reports into one ledger row,
and the same statement adds it to its hourly rollup. Both happen in the step's transaction, so a
crash writes neither and the step taken again writes each once; the row's (source_key,
price_version) is unique besides, and a duplicate adds nothing to the rollup."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from agents.hooks import StepInfo, Usage
from console.db import prepared_cursor
from costs.models import ROLLUP_DIMENSIONS

MILLION = Decimal(1_000_000)


@dataclass
class Entry:
    """A ledger row before it is written (the columns of costs_ledger but the id)."""

    tenant_id: int
    at: datetime
    source_key: str
    kind: str
    status: str
    user_id: int | None
    run_id: int | None
    step: int
    attempt: int
    agent_id: int | None
    agent_version: int
    provider: str
    model: str
    tool: str
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    amount_usd: Decimal | None
    priced: bool
    simulated: bool
    cache_savings_usd: Decimal
    price_source: str
    price_source_version: str
    rates: dict
    tier: str
    price: dict
    price_version: int = 1
    current: bool = True


COLUMNS = [name for name in Entry.__dataclass_fields__]


def cache_savings(cache_read_tokens: int, rates: dict) -> Decimal:
    """What reading from the cache saved against paying the input rate for those tokens."""
    try:
        full, cached = Decimal(rates["input_mtok"]), Decimal(rates["cache_read_mtok"])
    except (KeyError, ArithmeticError, TypeError):
        return Decimal("0")
    return cache_read_tokens * (full - cached) / MILLION


def priced_columns(price: dict, amount: Decimal, tokens_read: int) -> dict:
    """The snapshot's columns for an amount priced by ``price`` (the gateway's snapshot)."""
    unpriced = bool(price.get("unpriced"))
    rates = price.get("rates_per_mtok", {})
    return {"amount_usd": None if unpriced else amount, "priced": not unpriced, "simulated": bool(price.get("simulated")),
            "cache_savings_usd": cache_savings(tokens_read, rates), "price_source": price.get("source", ""),
            "price_source_version": price.get("version", ""), "rates": rates, "tier": price.get("tier", ""),
            "price": price}


def entry_for(info: StepInfo, usage: Usage, at: datetime | None = None) -> Entry | None:
    """The ledger row for what a step reported (or a classifier call made for the run outside its steps), or
    None when nothing was priced: a failed model attempt that used no tokens, or a tool without a declared cost."""
    at = at or timezone.now()
    common = {"tenant_id": info.tenant_id, "at": at, "status": usage.status, "user_id": info.requested_by_id,
              "run_id": info.run_id, "step": info.step, "attempt": usage.attempt, "agent_id": info.agent_id,
              "agent_version": info.agent_version}
    if usage.kind == "tool":
        if not usage.cost_usd:
            return None
        return Entry(**common, source_key=f"tool:{info.run_id}:{usage.call_id or info.step}", kind="tool",
                     provider="", model="", tool=usage.name, input_tokens=0, cache_read_tokens=0,
                     cache_write_tokens=0, output_tokens=0, reasoning_tokens=0,
                     **priced_columns({"source": "declared by the tool", "tool": usage.name,
                                       "declared_usd": str(usage.cost_usd)}, Decimal(usage.cost_usd), 0))
    if not (usage.input_tokens or usage.output_tokens):
        return None
    kind = usage.kind if usage.kind in ("embedding", "classifier") else "model"
    # A classifier call is made for a memory proposal (its call_id), outside the run's steps.
    made_for = usage.call_id if kind == "classifier" else info.step
    return Entry(**common, source_key=f"{kind}:{info.run_id}:{made_for}:{usage.attempt}", kind=kind,
                 provider=usage.provider, model=usage.name, tool="", input_tokens=usage.input_tokens,
                 cache_read_tokens=usage.cached_tokens, cache_write_tokens=usage.cache_write_tokens,
                 output_tokens=usage.output_tokens, reasoning_tokens=usage.reasoning_tokens,
                 **priced_columns(usage.price, Decimal(usage.cost_usd), usage.cached_tokens))


def rollup_upsert(source: str, *, one_row: bool = False) -> str:
    """SQL adding ``source`` (ledger-shaped rows with a ``sign`` column: +1 adds, -1 takes away) to the
    hourly rollups, grouped by hour and attribution. ``one_row``: ``source`` holds at most one row (a step's
    single priced thing), so it is added as it is, without the grouping (the same sums; parsed, planned and
    run in about two thirds of the time, on every step)."""
    keys = ", ".join(ROLLUP_DIMENSIONS)
    sums = {
        "calls": "sign", "unpriced_calls": "sign * (NOT priced)::int", "retry_calls": "sign * (attempt > 1)::int",
        "amount_usd": "sign * coalesce(amount_usd, 0)",
        "retry_amount_usd": "sign * CASE WHEN attempt > 1 THEN coalesce(amount_usd, 0) ELSE 0 END",
        "cache_savings_usd": "sign * cache_savings_usd", "input_tokens": "sign * input_tokens",
        "cache_read_tokens": "sign * cache_read_tokens", "cache_write_tokens": "sign * cache_write_tokens",
        "output_tokens": "sign * output_tokens", "reasoning_tokens": "sign * reasoning_tokens",
    }
    values, grouping = ((sums.values(), "") if one_row
                        else ((f"sum({expr})" for expr in sums.values()), " GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"))
    return (f"INSERT INTO costs_hourly (tenant_id, hour, {keys}, {', '.join(sums)}) "
            f"SELECT tenant_id, date_trunc('hour', at, 'UTC'), coalesce(agent_id, 0), agent_version, coalesce(user_id, 0), "
            f"provider, model, tool, kind, simulated, {', '.join(values)} "
            f"FROM ({source}) AS source{grouping} "
            f"ON CONFLICT (tenant_id, hour, {keys}) DO UPDATE SET "
            + ", ".join(f"{name} = costs_hourly.{name} + EXCLUDED.{name}" for name in sums))


_columns_sql = ", ".join(COLUMNS)
LEDGER_INSERT = (f"INSERT INTO costs_ledger ({_columns_sql}) "
                 f"SELECT {_columns_sql} FROM json_populate_recordset(NULL::costs_ledger, %s) "
                 f"ON CONFLICT (source_key, price_version) DO NOTHING RETURNING *")
LEDGER_WRITE = f"WITH written AS ({LEDGER_INSERT}) " + rollup_upsert("SELECT *, 1 AS sign FROM written")
# The same two writes as CTEs of the run's own statement (agents.run_store.run_write), for one entry (a
# step's usual one: its rollup row added without grouping) and for several.
LEDGER_CTES = {one_row: [f"costs_ledger_written AS ({LEDGER_INSERT})",
                         f"costs_hourly_added AS ({rollup_upsert('SELECT *, 1 AS sign FROM costs_ledger_written', one_row=one_row)})"]
               for one_row in (True, False)}


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} in the ledger")


def _entries_json(entries: list[Entry]) -> str:
    return json.dumps([vars(entry) for entry in entries], default=_json_value, separators=(",", ":"))


def ledger_write(entries: list[Entry]) -> None:
    """The entries and their rollups, in one statement (within the caller's transaction)."""
    if not entries:
        return
    with prepared_cursor() as cursor:
        cursor.execute(LEDGER_WRITE, [_entries_json(entries)])


def _ledger_ctes(entries: list[Entry]) -> tuple[list[str], list]:
    return LEDGER_CTES[len(entries) == 1], [_entries_json(entries)]


def usage_to_ledger(info: StepInfo, usage: Usage, writes) -> None:
    """The usage hook: the step's priced thing into the ledger and its rollup, in the step's transaction.
    With no budget watching the spend, they go with the run's own statement at the transaction's end (no
    round trip of their own); a budget reads the spend at once, so then they are written here, before it."""
    from costs.budgets import budgets_after_spend, budgets_watching
    from costs.live import spend_changed_on_commit

    if (entry := entry_for(info, usage)) is None:
        return
    watching = budgets_watching(info)
    if writes is not None and not watching:
        writes.hook_items_for("costs.ledger", _ledger_ctes).append(entry)
    else:
        ledger_write([entry])
        budgets_after_spend(info, watching)
    spend_changed_on_commit(info.tenant_id)
