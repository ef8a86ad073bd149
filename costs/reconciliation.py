"""Reconciliation: a provider's daily cost export (OpenAI's or Anthropic's CSV) beside our ledger, per day
and model, anything more than 1% apart flagged.

Columns are found by name, case-insensitively: the day (date, day, start_time, starting_at, bucket_start, …;
an ISO date or timestamp, UTC as providers bucket), the model (model; else OpenAI's line_item
"gpt-4o-mini-2024-07-18, input" up to its comma), the amount in USD (amount_value, amount_usd, cost_usd, cost,
amount; Anthropic's amount_cents / cost_cents in cents). Model names are compared without a trailing date
(gpt-4o-mini-2024-07-18 ~ gpt-4o-mini, claude-sonnet-4-20250514 ~ claude-sonnet-4)."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Sum

from costs.models import HourlyCost, Reconciliation

TOLERANCE = Decimal("0.01")
MAX_BYTES = 5_000_000
DAY_COLUMNS = ("date", "day", "start_time", "starting_at", "bucket_start", "start_date", "usage_date")
USD_COLUMNS = ("amount_value", "amount_usd", "cost_usd", "cost", "amount", "usd")
CENT_COLUMNS = ("amount_cents", "cost_cents")
DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


class ExportRefused(ValueError):
    """A file that cannot be read as a cost export, in words."""


def model_key(name: str) -> str:
    return DATED.sub("", name.strip().lower())


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _day(text: str, line: int) -> date:
    text = text.strip()
    try:
        if text.isdigit():  # a Unix timestamp (OpenAI's buckets)
            return datetime.fromtimestamp(int(text), UTC).date()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date() if "T" in text \
            else date.fromisoformat(text[:10])
    except ValueError:
        raise ExportRefused(f"Line {line}: '{text[:30]}' is not a date.") from None


def theirs_from(content: bytes) -> dict[tuple[date, str], Decimal]:
    """The export's cost per (day, model key). Raises ExportRefused."""
    if len(content) > MAX_BYTES:
        raise ExportRefused(f"The file is over {MAX_BYTES // 1_000_000} MB; export fewer days at once.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportRefused("The file is not UTF-8 text: upload the provider's CSV export as it is.") from None
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise ExportRefused("The file has no rows under its header.")
    header = rows[0]
    day_at, model_at = _column(header, DAY_COLUMNS), _column(header, ("model", "model_name"))
    line_item_at = _column(header, ("line_item", "description"))
    usd_at, cents_at = _column(header, USD_COLUMNS), _column(header, CENT_COLUMNS)
    if day_at is None or (model_at is None and line_item_at is None) or (usd_at is None and cents_at is None):
        raise ExportRefused("The header needs a day column (e.g. date), a model (model or line_item) and an amount "
                            f"(e.g. amount_value, cost_usd or amount_cents); it has: {', '.join(header)[:200]}.")
    totals: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            model = row[model_at] if model_at is not None else row[line_item_at].split(",")[0]
            raw = row[usd_at] if usd_at is not None else row[cents_at]
            amount = Decimal(raw.strip() or "0") / (1 if usd_at is not None else 100)
        except IndexError:
            raise ExportRefused(f"Line {number} has fewer cells than the header.") from None
        except InvalidOperation:
            raise ExportRefused(f"Line {number}: the amount is not a number.") from None
        if not amount.is_finite():
            raise ExportRefused(f"Line {number}: the amount is not a number.")
        totals[(_day(row[day_at], number), model_key(model))] += amount
    return totals


def ours_for(tenant, provider: str, days: set[date]) -> dict[tuple[date, str], Decimal]:
    """Our current spend per (UTC day, model key) for the provider over the days."""
    first, last = min(days), max(days)
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    totals: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    rows = (HourlyCost.objects.for_tenant(tenant).filter(provider=provider, hour__gte=start, hour__lt=end)
            .values("hour", "model").annotate(usd=Sum("amount_usd")))
    for row in rows:
        totals[(row["hour"].astimezone(UTC).date(), model_key(row["model"]))] += row["usd"] or 0
    return totals


def reconcile(*, tenant, provider: str, content: bytes, filename: str, actor) -> Reconciliation:
    theirs = theirs_from(content)
    ours = ours_for(tenant, provider, {day for day, _ in theirs})
    lines = []
    for day, model in sorted(set(theirs) | set(ours)):
        our, their = ours.get((day, model), Decimal(0)), theirs.get((day, model), Decimal(0))
        difference = our - their
        percent = (difference / their * 100) if their else (Decimal(100) if our else Decimal(0))
        flagged = abs(difference) > abs(their) * TOLERANCE
        lines.append({"day": day.isoformat(), "model": model, "ours_usd": f"{our:.4f}", "theirs_usd": f"{their:.4f}",
                      "difference_usd": f"{difference:.4f}", "percent": f"{percent:.2f}", "flagged": flagged})
    return Reconciliation.objects.create(tenant=tenant, provider=provider, filename=filename[:200], lines=lines,
                                         flagged=sum(line["flagged"] for line in lines), uploaded_by=actor)
