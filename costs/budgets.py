"""Budgets in the step: the gate that stops a run before a model call its budget cannot pay for, and
the alerts raised as spend crosses a budget's thresholds (each once per period).

Spend is read from what is committed (the hourly rollups, or a run's ledger rows), so two runs
racing at a budget's edge each see the other's spend only once it committed: each may overshoot by
the one call it had in flight, never more. Periods (day, month) are counted in the tenant's timezone;
the rollups' hours are UTC, so a timezone whose offset is not whole hours counts the period's first
partial hour with the period before."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from agents.gateway import Tokens, price
from agents.hooks import ModelCallEstimate, StepInfo
from console.models import TenantConfigCache
from costs.models import Budget, BudgetAction, BudgetPeriod, BudgetScope, CostSettings


@dataclass(frozen=True)
class Spent:
    usd: Decimal
    tokens: int


def _zone_of(tenant_id: int) -> ZoneInfo:
    return ZoneInfo(CostSettings.objects.filter(tenant_id=tenant_id).values_list("timezone", flat=True).first() or "UTC")


_zones = TenantConfigCache(_zone_of)


def tenant_zone(tenant_id: int, config_version: int | None = None) -> ZoneInfo:
    """The zone the tenant's days and months are counted in (UTC unless set). With the tenant's configuration
    version (a step's hooks know it), kept until the version rises (setting the zone raises it)."""
    return _zones.get(tenant_id, config_version)


def period_start(period: str, zone: ZoneInfo, now: datetime) -> tuple[datetime, str]:
    """The start of the period holding ``now`` in ``zone`` (as an aware datetime) and its key."""
    local = now.astimezone(zone)
    if period == BudgetPeriod.DAY:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start.strftime("%Y-%m-%d")
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, start.strftime("%Y-%m")


# A tenant's budgets until its configuration version rises (a budget's change raises it).
_budgets = TenantConfigCache(lambda tenant_id: list(Budget.objects.filter(tenant_id=tenant_id)))


def _budgets_of(tenant_id: int, config_version: int | None) -> list[Budget]:
    return _budgets.get(tenant_id, config_version)


def applies(budget: Budget, info: StepInfo) -> bool:
    if budget.scope == BudgetScope.AGENT:
        return budget.agent_id == info.agent_id
    if budget.scope == BudgetScope.USER:
        return budget.user_id is not None and budget.user_id == info.requested_by_id
    return True


def spent(budget: Budget, *, run_id: int | None, zone: ZoneInfo, now: datetime) -> tuple[Spent, str]:
    """What the budget's scope spent in its current period (as committed, plus the caller's own
    transaction), and the period's key."""
    if budget.scope == BudgetScope.RUN:
        sql = ("SELECT coalesce(sum(amount_usd), 0), coalesce(sum(input_tokens + output_tokens), 0) FROM costs_ledger"
               " WHERE run_id = %s AND tenant_id = %s AND current")
        params, key = [run_id, budget.tenant_id], f"run:{run_id}"
    else:
        start, key = period_start(budget.period, zone, now)
        sql = ("SELECT coalesce(sum(amount_usd), 0), coalesce(sum(input_tokens + output_tokens), 0) FROM costs_hourly"
               " WHERE tenant_id = %s AND hour >= date_trunc('hour', %s::timestamptz, 'UTC')")
        params = [budget.tenant_id, start]
        if budget.scope == BudgetScope.AGENT:
            sql, params = sql + " AND agent_id = %s", [*params, budget.agent_id]
        elif budget.scope == BudgetScope.USER:
            sql, params = sql + " AND user_id = %s", [*params, budget.user_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        usd, tokens = cursor.fetchone()
    return Spent(Decimal(usd), int(tokens)), key


def used_percent(budget: Budget, amount: Spent) -> float:
    shares = []
    if budget.limit_usd is not None and budget.limit_usd > 0:
        shares.append(float(amount.usd / budget.limit_usd))
    if budget.limit_tokens:
        shares.append(amount.tokens / budget.limit_tokens)
    return max(shares, default=0.0) * 100


def estimate_of(estimate: ModelCallEstimate) -> Spent:
    """The next call at its most: the prompt at the input price and the most output at the output price."""
    provider, _, model = estimate.models[0].partition(":")
    amount, _ = price(provider, model, Tokens(input=estimate.input_tokens, output=estimate.max_output_tokens))
    return Spent(amount, estimate.input_tokens + estimate.max_output_tokens)


def over_limit(budget: Budget, amount: Spent) -> bool:
    return ((budget.limit_usd is not None and amount.usd > budget.limit_usd)
            or (budget.limit_tokens is not None and amount.tokens > budget.limit_tokens))


def budget_gate(info: StepInfo, estimate: ModelCallEstimate) -> str | None:
    """The gate hook: ``budget_exhausted: <budget>`` when a stopping budget cannot pay for the next call."""
    stopping = [b for b in _budgets_of(info.tenant_id, info.config_version)
                if b.action == BudgetAction.STOP and applies(b, info)]
    if not stopping:
        return None
    zone, now, next_call = tenant_zone(info.tenant_id, info.config_version), timezone.now(), estimate_of(estimate)
    for budget in stopping:
        so_far, _ = spent(budget, run_id=info.run_id, zone=zone, now=now)
        if over_limit(budget, Spent(so_far.usd + next_call.usd, so_far.tokens + next_call.tokens)):
            return f"budget_exhausted: {budget.name}"
    return None


def budgets_after_spend(info: StepInfo, entry) -> None:
    """After a ledger write, in its transaction: each applying budget's thresholds now crossed, recorded
    once per period (a console notice and an audit record)."""
    budgets = [b for b in _budgets_of(info.tenant_id, info.config_version) if applies(b, info) and b.thresholds]
    if not budgets:
        return
    zone, now = tenant_zone(info.tenant_id, info.config_version), timezone.now()
    for budget in budgets:
        so_far, key = spent(budget, run_id=info.run_id, zone=zone, now=now)
        percent = used_percent(budget, so_far)
        for threshold in sorted(t for t in budget.thresholds if t <= percent):
            alert_once(budget, key, threshold, so_far, info.run_id)


def alert_once(budget: Budget, period_key: str, threshold: int, amount: Spent, run_id: int | None) -> bool:
    """Record the alert unless this threshold already fired in this period. True if it is new."""
    from console.services import audit_record

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO costs_budgetalert (tenant_id, budget_id, period_key, threshold, spent_usd, spent_tokens, run_id, at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, now()) ON CONFLICT (budget_id, period_key, threshold) DO NOTHING"
            " RETURNING id",
            [budget.tenant_id, budget.pk, period_key, threshold, amount.usd, amount.tokens, run_id])
        if cursor.fetchone() is None:
            return False
    audit_record(tenant=budget.tenant_id, actor=None, verb="budget.threshold",
                 target=f"budget {budget.name}",
                 data={"budget": budget.pk, "threshold": threshold, "period": period_key, "spent_usd": str(amount.usd),
                       "spent_tokens": amount.tokens, "run": run_id})
    return True
