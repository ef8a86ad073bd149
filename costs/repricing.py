"""Repricing: the tenant's price rules applied to a range of the ledger. Each row whose price changes gets
a new version (price_version + 1, current) with the rule's snapshot; the old version stays, not current;
the rollups lose the old amount and gain the new one in the same transaction. The job keeps its progress
and, at the end, the diff per day and model (old vs new, exact)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.gateway import Tokens, price
from costs.budgets import tenant_zone
from costs.ledger import MILLION, Entry, ledger_write, priced_columns, rollup_upsert
from costs.live import spend_changed_on_commit
from costs.models import TOKEN_KINDS, LedgerEntry, PriceRule, PriceRuleKind, RepricingJob

CHUNK = 500
SUPERSEDE = ("WITH old AS (UPDATE costs_ledger SET current = false WHERE id = ANY(%s) AND current RETURNING *) "
             + rollup_upsert("SELECT *, -1 AS sign FROM old"))


def rule_for(rules: list[PriceRule], row: LedgerEntry, day) -> PriceRule | None:
    """The rule in force for the row's model on its day: the latest effective one."""
    matching = [r for r in rules if r.provider == row.provider and r.model == row.model and r.effective_from <= day]
    return max(matching, key=lambda r: (r.effective_from, r.pk), default=None)


def rule_price(rule: PriceRule, row: LedgerEntry) -> tuple[Decimal, dict] | None:
    """The row's amount and snapshot under the rule; None when the rule cannot price it (a discount off a list
    price the model does not have)."""
    rule_snapshot = {"source": "price rule", "rule": rule.pk, "rule_kind": rule.kind,
                     "effective_from": rule.effective_from.isoformat(), "provider": row.provider, "model": row.model}
    if rule.kind == PriceRuleKind.DISCOUNT:
        listed, snapshot = price(row.provider, row.model, Tokens(input=row.input_tokens, cache_read=row.cache_read_tokens,
                                                                 cache_write=row.cache_write_tokens,
                                                                 output=row.output_tokens), row.at)
        if snapshot.get("unpriced"):
            return None
        factor = 1 - rule.discount_percent / 100
        return listed * factor, {**rule_snapshot, "discount_percent": str(rule.discount_percent),
                                 "list_price": snapshot, "rates_per_mtok": {
                                     unit: str(Decimal(rate) * factor) for unit, rate in
                                     snapshot.get("rates_per_mtok", {}).items()}}
    full = rule.input_mtok
    cache_read = rule.cache_read_mtok if rule.cache_read_mtok is not None else full
    cache_write = rule.cache_write_mtok if rule.cache_write_mtok is not None else full
    uncached = max(0, row.input_tokens - row.cache_read_tokens - row.cache_write_tokens)
    amount = (uncached * full + row.cache_read_tokens * cache_read + row.cache_write_tokens * cache_write
              + row.output_tokens * rule.output_mtok) / MILLION
    rates = {"input_mtok": str(full), "output_mtok": str(rule.output_mtok), "cache_read_mtok": str(cache_read),
             "cache_write_mtok": str(cache_write)}
    return amount, {**rule_snapshot, "rates_per_mtok": rates}


def _entry(row: LedgerEntry) -> Entry:
    return Entry(**{name: getattr(row, name) for name in Entry.__dataclass_fields__})


class LeaseLost(Exception):
    """The job was claimed again (its lease had expired): this attempt commits nothing more."""


def repricing_claim(job_id: int) -> RepricingJob | None:
    """Take the job to run: a queued one, or a running one whose lease expired (its worker died). None when
    another attempt holds it or it is finished. The claim raises ``attempt``, which fences the older one out."""
    now = timezone.now()
    # One transaction: the row stays locked by the claim until the attempt it set is read back, so no later
    # claim can slip between the two and leave two workers holding the same attempt.
    with transaction.atomic():
        claimed = RepricingJob.objects.filter(pk=job_id).filter(
            Q(status="queued") | Q(status="running", heartbeat_at__lt=now - RepricingJob.LEASE)
            | Q(status="running", heartbeat_at=None, created_at__lt=now - RepricingJob.LEASE),
        ).update(status="running", attempt=F("attempt") + 1, heartbeat_at=now)
        return RepricingJob.objects.select_related("tenant").get(pk=job_id) if claimed else None


def _held(job: RepricingJob):
    """The job's row while this attempt still holds it."""
    return RepricingJob.objects.for_tenant(job.tenant_id).filter(pk=job.pk, status="running", attempt=job.attempt)


def repricing_run(job_id: int) -> RepricingJob:
    """Run the job (or continue it from its last committed chunk, after a worker died). Each chunk is one
    transaction: the new versions, the rollups, and the job's progress, position, diff so far and heartbeat."""
    job = repricing_claim(job_id)
    if job is None:  # finished, or another attempt holds it
        return RepricingJob.objects.get(pk=job_id)
    try:
        return _repricing_continue(job)
    except LeaseLost:  # claimed again after this attempt's lease expired: the new holder continues
        return RepricingJob.objects.get(pk=job_id)
    except Exception as exc:  # the job says why; the chunks done stay done (each was one transaction)
        _held(job).update(status="failed", error=f"{type(exc).__name__}: {exc}"[:300], finished_at=timezone.now())
        raise


def _window(job: RepricingJob):
    zone = tenant_zone(job.tenant_id)
    return zone, datetime.combine(job.first_day, time(), zone), datetime.combine(job.last_day + timedelta(days=1), time(), zone)


def _rows(job: RepricingJob, rules: list[PriceRule], start, end):
    models = Q()
    for rule in rules:
        models |= Q(provider=rule.provider, model=rule.model)
    rows = LedgerEntry.objects.for_tenant(job.tenant).filter(current=True, at__gte=start, at__lt=end,
                                                             kind__in=TOKEN_KINDS)
    return rows.filter(models) if rules else rows.none()


def _repricing_continue(job: RepricingJob, max_chunks: int | None = None) -> RepricingJob:
    """The claimed job from where it got to, to the end (or ``max_chunks`` chunks, leaving it running as a
    worker that stopped there would)."""
    zone, start, end = _window(job)
    rules = list(PriceRule.objects.for_tenant(job.tenant))
    rows = _rows(job, rules, start, end)
    if job.last_id is None:
        # The rows as they are at the first claim: the versions this job writes (same time, higher ids) are not
        # read again, and a continued job reads the same rows as the attempt it follows.
        last_id = LedgerEntry.objects.for_tenant(job.tenant).order_by("-id").values_list("id", flat=True).first() or 0
        if not _held(job).update(last_id=last_id, total=rows.filter(id__lte=last_id).count(),
                                 heartbeat_at=timezone.now()):
            raise LeaseLost
        job.last_id = last_id
    rows = rows.filter(id__lte=job.last_id)
    diff = _diff_of(job.diff)
    after = (job.after_at or start, job.after_id)
    while max_chunks is None or max_chunks > 0:
        chunk = list(rows.filter(Q(at__gt=after[0]) | Q(at=after[0], id__gt=after[1])).order_by("at", "id")[:CHUNK])
        if not chunk:
            break
        diff = _reprice_chunk(job, chunk, rules, zone, diff)
        after = (chunk[-1].at, chunk[-1].id)
        max_chunks = None if max_chunks is None else max_chunks - 1
    else:
        return job
    if not _held(job).update(status="done", diff=_report(diff), finished_at=timezone.now()):
        raise LeaseLost
    job.refresh_from_db()
    return job


def _diff_of(report: list[dict]) -> dict[tuple[str, str], list[Decimal]]:
    return {(line["day"], line["model"]): [Decimal(line["old_usd"]), Decimal(line["new_usd"])] for line in report}


def _report(diff: dict[tuple[str, str], list[Decimal]]) -> list[dict]:
    return [{"day": day, "model": model, "old_usd": str(old), "new_usd": str(new), "difference_usd": str(new - old)}
            for (day, model), (old, new) in sorted(diff.items())]


def _reprice_chunk(job, chunk: list[LedgerEntry], rules, zone, diff) -> dict:
    """One chunk in one transaction, only while this attempt holds the job; returns the diff with it added."""
    diff = {key: list(sums) for key, sums in diff.items()}
    superseded, versions = [], []
    for row in chunk:
        day = row.at.astimezone(zone).date()
        rule = rule_for(rules, row, day)
        priced = rule_price(rule, row) if rule else None
        old = row.amount_usd or Decimal(0)
        sums = diff.setdefault((day.isoformat(), f"{row.provider}:{row.model}"), [Decimal(0), Decimal(0)])
        if priced is None or (priced[0] == row.amount_usd and row.price.get("rule") == rule.pk):
            sums[0] += old
            sums[1] += old
            continue
        amount, snapshot = priced
        sums[0] += old
        sums[1] += amount
        superseded.append(row.pk)
        versions.append(replace(_entry(row), price_version=row.price_version + 1, current=True,
                                **priced_columns(snapshot, amount, row.cache_read_tokens)))
    with transaction.atomic():
        # First, and fencing: the job's row, locked, still this attempt's (else nothing of the chunk is written).
        if not _held(job).update(done=F("done") + len(chunk), changed=F("changed") + len(superseded),
                                 after_at=chunk[-1].at, after_id=chunk[-1].id, diff=_report(diff),
                                 heartbeat_at=timezone.now()):
            raise LeaseLost
        if superseded:
            with connection.cursor() as cursor:
                cursor.execute(SUPERSEDE, [superseded])
            ledger_write(versions)
            spend_changed_on_commit(job.tenant_id)  # open dashboards show the new amounts
    return diff
