"""Reading costs. The dashboard reads the hourly rollups only (its cost does not grow with the
ledger); drill-downs and exports read the ledger, a page at a time by keyset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db.models import Q, Sum
from django.db.models.functions import TruncDay, TruncHour

from agents.models import Agent, Run
from costs.models import CostKind, HourlyCost, LedgerEntry

CENTS = Decimal("0.0001")  # amounts are shown and exported at four decimals (present.money)
GROUPINGS = {
    "agent": "agent_id", "model": "model", "user": "user_id", "tool": "tool", "agent_version": "agent_version",
    "provider": "provider", "kind": "kind",
}
GROUPING_LABELS = {"agent": "Agent", "model": "Model", "user": "User", "tool": "Tool",
                   "agent_version": "Agent version", "provider": "Provider", "kind": "Kind"}
SUMS = ("calls", "unpriced_calls", "retry_calls", "amount_usd", "retry_amount_usd", "cache_savings_usd",
        "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
TOP_N = 8


def rounded(amount) -> Decimal:
    return Decimal(amount or 0).quantize(CENTS, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Window:
    """A range of hours [start, end) and the zone its days are told in."""

    start: datetime
    end: datetime
    zone: ZoneInfo

    @property
    def hourly_buckets(self) -> bool:
        return self.end - self.start <= timedelta(days=2)

    @property
    def days_approximate(self) -> bool:
        """Whether the range's days begin off the UTC hour (a zone such as Asia/Kolkata, +05:30): the rollups
        are hourly, so the dashboard's days then begin at the whole UTC hour before local midnight."""
        return any(edge.utcoffset() and edge.utcoffset() % timedelta(hours=1) for edge in (self.start, self.end))


def _rollups(tenant, window: Window):
    return HourlyCost.objects.for_tenant(tenant).filter(hour__gte=window.start, hour__lt=window.end)


def rollup_totals(tenant, window: Window | None = None) -> dict:
    rows = HourlyCost.objects.for_tenant(tenant) if window is None else _rollups(tenant, window)
    totals = rows.aggregate(**{f"total_{name}": Sum(name) for name in SUMS},
                            total_simulated_calls=Sum("calls", filter=Q(simulated=True)))
    return {name.removeprefix("total_"): value or 0 for name, value in totals.items()}


def _labels(tenant, grouping: str, keys) -> dict:
    """Words for the keys of a grouping: agents and people by name, versions as "agent vN", kinds by their
    label ("Memory classifier call")."""
    keys = set(keys)
    if grouping == "agent":
        names = dict(Agent.objects.for_tenant(tenant).filter(pk__in=keys).values_list("pk", "name"))
        return {key: names.get(key, "(none)" if not key else f"agent {key}") for key in keys}
    if grouping == "user":
        names = dict(get_user_model().objects.filter(pk__in=keys).values_list("pk", "username"))
        return {key: names.get(key, "(no one)" if not key else f"user {key}") for key in keys}
    if grouping == "agent_version":
        return {key: f"version {key[1]} of {key[0]}" for key in keys}
    if grouping == "kind":
        kinds = dict(CostKind.choices)
        return {key: kinds.get(key, key or "(none)") for key in keys}
    return {key: key or "(none)" for key in keys}


def grouped(tenant, window: Window, grouping: str) -> list[dict]:
    """The range's spend per group, largest first, each with its share, calls, tokens and unpriced count."""
    column = GROUPINGS[grouping]
    fields = ["agent_id", "agent_version"] if grouping == "agent_version" else [column]
    rows = [{name.removeprefix("total_"): value for name, value in row.items()} for row in
            _rollups(tenant, window).values(*fields).annotate(**{f"total_{name}": Sum(name) for name in SUMS},
                                                              total_simulated_calls=Sum("calls", filter=Q(simulated=True)))]
    total = sum((row["amount_usd"] or 0 for row in rows), Decimal(0))
    agents = dict(Agent.objects.for_tenant(tenant).values_list("pk", "name")) if grouping == "agent_version" else {}
    for row in rows:
        row["key"] = (agents.get(row["agent_id"], row["agent_id"]), row["agent_version"]) \
            if grouping == "agent_version" else row[column]
        row["value"] = f"{row['agent_id']}:{row['agent_version']}" if grouping == "agent_version" else str(row[column])
        row["share"] = float(row["amount_usd"] / total * 100) if total else 0.0
        row["tokens"] = (row["input_tokens"] or 0) + (row["output_tokens"] or 0)
        row["amount"] = rounded(row["amount_usd"])
    labels = _labels(tenant, grouping, [row["key"] for row in rows])
    for row in rows:
        row["label"] = labels[row["key"]]
    rows.sort(key=lambda row: (-(row["amount_usd"] or 0), row["label"]))
    return rows


def series(tenant, window: Window, grouping: str, groups: list[dict]) -> dict:
    """Spend per bucket (hours for up to two days, else days in the tenant's zone) for the top groups,
    the rest as "Other": {"buckets": [label…], "datasets": [{"label", "values": [Decimal…]}]}."""
    column = GROUPINGS[grouping]
    top = groups[:TOP_N]
    top_values = {row["value"]: row["label"] for row in top}
    step = timedelta(hours=1) if window.hourly_buckets else timedelta(days=1)
    buckets, cursor = [], _bucket(window.start, window)
    while cursor < window.end:
        buckets.append(cursor)
        cursor = _bucket(cursor + step + timedelta(hours=2), window) if step.days else cursor + step
    index = {bucket: position for position, bucket in enumerate(buckets)}
    fields = ["agent_id", "agent_version"] if grouping == "agent_version" else [column]
    data: dict[str, list[Decimal]] = {label: [Decimal(0)] * len(buckets) for label in top_values.values()}
    other = [Decimal(0)] * len(buckets)
    truncate = TruncHour if window.hourly_buckets else TruncDay
    rows = (_rollups(tenant, window).annotate(bucket=truncate("hour", tzinfo=window.zone))
            .values("bucket", *fields).annotate(usd=Sum("amount_usd")))
    for row in rows:
        value = f"{row['agent_id']}:{row['agent_version']}" if grouping == "agent_version" else str(row[column])
        position = index.get(_bucket(row["bucket"], window))
        if position is None:
            continue
        target = data[top_values[value]] if value in top_values else other
        target[position] += row["usd"] or 0
    if any(other):
        data["Other"] = other
    datasets = [{"label": label, "values": [rounded(v) for v in values]} for label, values in data.items()]
    for dataset in datasets:
        dataset["total"] = sum(dataset["values"], Decimal(0))
    fmt = "%H:%M" if window.hourly_buckets else "%b %d"
    labels = [bucket.astimezone(window.zone).strftime(fmt) for bucket in buckets]
    return {"buckets": labels, "datasets": datasets,
            "rows": [{"bucket": label, "values": [dataset["values"][i] for dataset in datasets]}
                     for i, label in enumerate(labels)]}


def _bucket(moment: datetime, window: Window) -> datetime:
    local = moment.astimezone(window.zone)
    if window.hourly_buckets:
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def unit_costs(tenant, window: Window, total: Decimal, tokens: int) -> dict:
    """Per run, per completed run and tokens per run, over the runs started in the range."""
    runs = Run.objects.for_tenant(tenant).filter(created_at__gte=window.start, created_at__lt=window.end)
    started = runs.count()
    completed = runs.filter(status="completed").count()
    return {"runs": started, "completed_runs": completed,
            "per_run": rounded(total / started) if started else None,
            "per_completed_run": rounded(total / completed) if completed else None,
            "tokens_per_run": round(tokens / started) if started else None}


def dashboard(tenant, window: Window, grouping: str) -> dict:
    totals = rollup_totals(tenant, window)
    groups = grouped(tenant, window, grouping)
    tokens = totals["input_tokens"] + totals["output_tokens"]
    chart = series(tenant, window, grouping, groups)
    return {"totals": totals, "total_usd": rounded(totals["amount_usd"]), "groups": groups, "series": chart,
            "chart": {"buckets": chart["buckets"], "datasets": [{"label": d["label"], "values": [float(v) for v in d["values"]]}
                                                                for d in chart["datasets"]]},
            "units": unit_costs(tenant, window, Decimal(totals["amount_usd"]), tokens),
            "simulated": totals["simulated_calls"] > 0}


def _dimension_filter(grouping: str, value: str) -> Q:
    if grouping == "agent_version":
        agent_id, _, version = value.partition(":")
        return Q(agent_id=int(agent_id), agent_version=int(version))
    column = GROUPINGS[grouping]
    if column in ("agent_id", "user_id"):
        number = int(value)
        return Q(**{f"{column}__isnull": True}) | Q(**{column: 0}) if number == 0 else Q(**{column: number})
    return Q(**{column: value})


def ledger_rows(tenant, window: Window, grouping: str | None = None, value: str | None = None):
    rows = LedgerEntry.objects.for_tenant(tenant).filter(current=True, at__gte=window.start, at__lt=window.end)
    if grouping:
        rows = rows.filter(_dimension_filter(grouping, value))
    return rows


def runs_page(tenant, window: Window, grouping: str | None, value: str | None, *, before: int | None = None,
              size: int = 50) -> tuple[list[dict], int | None]:
    """The runs behind a group's spend, newest run first, a page at a time (keyset on the run id):
    the rows and the cursor of the next page (None at the end)."""
    rows = ledger_rows(tenant, window, grouping, value).exclude(run_id=None)
    if before is not None:
        rows = rows.filter(run_id__lt=before)
    page = list(rows.values("run_id").annotate(amount_usd=Sum("amount_usd"), input_tokens=Sum("input_tokens"),
                                                output_tokens=Sum("output_tokens"))
                .order_by("-run_id")[: size + 1])
    runs = {run.pk: run for run in Run.objects.for_tenant(tenant).filter(pk__in=[r["run_id"] for r in page])
            .select_related("agent")}
    for row in page:
        row["run"] = runs.get(row["run_id"])
    more = len(page) > size
    return page[:size], (page[size - 1]["run_id"] if more else None)


def run_calls(tenant, run_id: int):
    """A run's priced calls, each with the price it was charged at (current versions)."""
    return LedgerEntry.objects.for_tenant(tenant).filter(run_id=run_id, current=True).order_by("at", "id")


def ledger_export(tenant, window: Window, *, chunk: int = 2000):
    """Every current ledger row of the range, oldest first, read in keyset pages (the web process holds
    one page at a time, however long the export)."""
    after = (window.start, 0)
    while True:
        rows = list(LedgerEntry.objects.for_tenant(tenant).filter(current=True, at__lt=window.end)
                    .filter(Q(at__gt=after[0]) | Q(at=after[0], id__gt=after[1]))
                    .order_by("at", "id")[:chunk])
        yield from rows
        if len(rows) < chunk:
            return
        after = (rows[-1].at, rows[-1].id)
