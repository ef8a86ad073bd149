"""Budgets in the step: the gate that stops a run before a model call its budget cannot pay for, and
the alerts raised as spend crosses a budget's thresholds (each once per period).

Spend is read from what is committed (the hourly rollups, or a run's ledger rows), so two runs
racing at a budget's edge each see the other's spend only once it committed: each may overshoot by
the one call it had in flight, never more. Periods (day, month) are counted in the tenant's timezone,
exactly also in a zone whose offset is not whole hours (see spent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from agents.gateway import Tokens, price
from agents.hooks import GateAsk, ModelCallEstimate, Review, StepInfo
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
    transaction), and the period's key. A period read from the hourly rollups from its first whole UTC
    hour on; in a zone whose offset is not whole hours (Asia/Kolkata, +05:30) the minutes before that hour
    are read from the ledger rows, so the period starts exactly at local midnight."""
    if budget.scope == BudgetScope.RUN:
        sql = ("SELECT coalesce(sum(amount_usd), 0), coalesce(sum(input_tokens + output_tokens), 0) FROM costs_ledger"
               " WHERE run_id = %s AND tenant_id = %s AND current")
        params, key = [run_id, budget.tenant_id], f"run:{run_id}"
    else:
        start, key = period_start(budget.period, zone, now)
        whole_hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if whole_hour < start:
            whole_hour += timedelta(hours=1)
        scoped, scope_params = "", []
        if budget.scope == BudgetScope.AGENT:
            scoped, scope_params = " AND agent_id = %s", [budget.agent_id]
        elif budget.scope == BudgetScope.USER:
            scoped, scope_params = " AND user_id = %s", [budget.user_id]
        sql = ("SELECT amount_usd, input_tokens + output_tokens FROM costs_hourly WHERE tenant_id = %s AND hour >= %s"
               + scoped)
        params = [budget.tenant_id, whole_hour, *scope_params]
        if whole_hour > start:
            sql += (" UNION ALL SELECT coalesce(amount_usd, 0), input_tokens + output_tokens FROM costs_ledger"
                    " WHERE tenant_id = %s AND current AND at >= %s AND at < %s" + scoped)
            params += [budget.tenant_id, start, whole_hour, *scope_params]
        sql = f"SELECT coalesce(sum(amount_usd), 0), coalesce(sum(tokens), 0) FROM ({sql}) AS spend (amount_usd, tokens)"
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


def budget_gate(info: StepInfo, estimate: ModelCallEstimate) -> str | GateAsk | None:
    """The gate hook: ``budget_exhausted: <budget>`` when a stopping budget cannot pay for the next call;
    for an ask-to-continue budget, an ask for a person to extend it for this run (past what was granted)."""
    acting = [b for b in _budgets_of(info.tenant_id, info.config_version)
              if b.action in (BudgetAction.STOP, BudgetAction.ASK) and applies(b, info)]
    if not acting:
        return None
    zone, now, next_call = tenant_zone(info.tenant_id, info.config_version), timezone.now(), estimate_of(estimate)
    for budget in acting:
        so_far, key = spent(budget, run_id=info.run_id, zone=zone, now=now)
        with_next = Spent(so_far.usd + next_call.usd, so_far.tokens + next_call.tokens)
        if not over_limit(budget, with_next):
            continue  # within the limit itself: what people granted (never negative) is not read
        if budget.action == BudgetAction.STOP:
            return f"budget_exhausted: {budget.name}"
        granted, grants = granted_to_run(budget, run_id=info.run_id, period_key=key)
        if over_limit(budget, Spent(with_next.usd - granted.usd, with_next.tokens - granted.tokens)):
            return _ask_to_continue(budget, info, so_far, granted, key, grants)
    return None


def granted_to_run(budget: Budget, *, run_id: int, period_key: str) -> tuple[Spent, int]:
    """What people granted this run of the budget in this period (BudgetExtension rows), and how many times."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(usd), 0), coalesce(sum(tokens), 0), count(*) FROM costs_budgetextension"
                       " WHERE budget_id = %s AND run_id = %s AND period_key = %s", [budget.pk, run_id, period_key])
        usd, tokens, count = cursor.fetchone()
    return Spent(Decimal(usd), int(tokens)), int(count)


FOUR_PLACES = Decimal("0.0001")


def extension_asked(budget: Budget) -> dict:
    """The extension a request asks for: the budget's own, else a fifth of its limit (per limit it has)."""
    asked = {}
    if budget.limit_usd is not None:
        usd = budget.extension_usd if budget.extension_usd is not None else budget.limit_usd / 5
        asked["extension_usd"] = str(Decimal(usd).quantize(FOUR_PLACES))
    if budget.limit_tokens is not None:
        asked["extension_tokens"] = budget.extension_tokens if budget.extension_tokens is not None \
            else max(1, budget.limit_tokens // 5)
    return asked


def _ask_to_continue(budget: Budget, info: StepInfo, so_far: Spent, granted: Spent, period_key: str,
                     grants: int) -> GateAsk:
    """The request for a person: which budget, spent vs limit (and what was granted before), the extension."""
    scope = {BudgetScope.TENANT: "the whole tenant", BudgetScope.AGENT: "one agent's runs",
             BudgetScope.USER: "one person's runs", BudgetScope.RUN: "each run"}[budget.scope]
    arguments = {
        "budget": budget.name, "budget_id": budget.pk, "period": period_key, "applies_to": f"Applies to {scope}"
        + ("" if budget.scope == BudgetScope.RUN else f", per {budget.period} ({period_key})"),
        "extension_for": "for the rest of the run" if budget.scope == BudgetScope.RUN
        else f"until the {budget.period} ({period_key}) ends",
        "spent_usd": str(so_far.usd.quantize(FOUR_PLACES)), "spent_tokens": so_far.tokens,
        "limit_usd": None if budget.limit_usd is None else str(budget.limit_usd.quantize(FOUR_PLACES)),
        "limit_tokens": budget.limit_tokens, "granted_usd": str(granted.usd.quantize(FOUR_PLACES)),
        "granted_tokens": granted.tokens, **extension_asked(budget)}
    request_key = f"budget:{budget.pk}:{period_key}:{grants + 1}"
    return GateAsk(key=request_key, kind="budget", title=f"budget {budget.name}"[:100],
                   reason=f"the budget {budget.name} is used up; a person decides whether the run goes on",
                   arguments=arguments, stop_reason=f"budget_exhausted: {budget.name}",
                   decided=partial(extension_decided, budget, info.run_id, period_key, request_key))


def extension_decided(budget: Budget, run_id: int, period_key: str, request_key: str, review: Review) -> str | None:
    """In the step's transaction, once a person decided: approved grants the (possibly edited) extension to
    the run, once, audited; anything else ends the run as the stop action would."""
    from console.services import audit_record

    if review.status != "approved":
        return f"budget_exhausted: {budget.name}"
    asked = review.arguments_to_run or {}
    usd = Decimal(str(asked.get("extension_usd") or "0"))
    tokens = int(asked.get("extension_tokens") or 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO costs_budgetextension (tenant_id, budget_id, run_id, period_key, request_key, usd, tokens,"
            " approval_id, granted_by, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
            " ON CONFLICT (budget_id, run_id, request_key) DO NOTHING RETURNING id",
            [budget.tenant_id, budget.pk, run_id, period_key, request_key, usd, tokens, review.id,
             review.decided_by[:150]])
        if cursor.fetchone() is None:
            return None  # granted before (the step is taken again)
    audit_record(tenant=budget.tenant_id, actor=review.decided_by or None, verb="budget.extended", target=f"budget {budget.name}",
                 data={"budget": budget.pk, "run": run_id, "period": period_key, "extension_usd": str(usd),
                       "extension_tokens": tokens, "approval": review.id, "by": review.decided_by})
    return None


def budgets_watching(info: StepInfo) -> list[Budget]:
    """The budgets with thresholds that apply to the step's spend (their alerts read it as soon as it is written)."""
    return [b for b in _budgets_of(info.tenant_id, info.config_version) if applies(b, info) and b.thresholds]


def budgets_after_spend(info: StepInfo, budgets: list[Budget]) -> None:
    """After a ledger write, in its transaction: each watching budget's thresholds now crossed, recorded
    once per period (a console notice and an audit record)."""
    if not budgets:
        return
    zone, now = tenant_zone(info.tenant_id, info.config_version), timezone.now()
    for budget in budgets:
        so_far, key = spent(budget, run_id=info.run_id, zone=zone, now=now)
        percent = used_percent(budget, so_far)
        for threshold in sorted(t for t in budget.thresholds if t <= percent):
            alert_once(budget, key, threshold, so_far, info.run_id)


def alert_once(budget: Budget, period_key: str, threshold: int, amount: Spent, run_id: int | None) -> bool:
    """Record the alert unless this threshold already fired in this period, and announce it (webhook
    deliveries in this transaction, the email after commit). True if it is new."""
    from console.services import audit_record
    from costs.notifications import alert_announce

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO costs_budgetalert (tenant_id, budget_id, period_key, threshold, spent_usd, spent_tokens, run_id, at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, now()) ON CONFLICT (budget_id, period_key, threshold) DO NOTHING"
            " RETURNING id",
            [budget.tenant_id, budget.pk, period_key, threshold, amount.usd, amount.tokens, run_id])
        inserted = cursor.fetchone()
        if inserted is None:
            return False
    audit_record(tenant=budget.tenant_id, actor=None, verb="budget.threshold",
                 target=f"budget {budget.name}",
                 data={"budget": budget.pk, "threshold": threshold, "period": period_key, "spent_usd": str(amount.usd),
                       "spent_tokens": amount.tokens, "run": run_id})
    alert_announce(inserted[0], budget=budget, period_key=period_key, threshold=threshold, usd=amount.usd,
                   tokens=amount.tokens, run_id=run_id)
    return True
