"""Changing costs: rollups rebuilt from the ledger, budgets and the tenant's cost settings."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from console.models import tenant_config_changed
from console.services import audit_record
from costs.ledger import rollup_upsert
from costs.models import Budget, CostSettings, HourlyCost, PriceRule, RepricingJob


def rollups_rebuild(tenant) -> int:
    """The tenant's hourly rollups computed again from its current ledger rows, in one transaction (the
    tenant's ledger writes wait for it). Returns the number of hourly rows."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # A writer still open holds its rollup rows' locks: the delete waits for it, and the rebuild's
            # read (a later statement) sees its ledger rows; a later writer adds onto the rebuilt rows.
            HourlyCost.objects.for_tenant(tenant).delete()
            cursor.execute(rollup_upsert("SELECT *, 1 AS sign FROM costs_ledger WHERE tenant_id = %s AND current"),
                           [tenant.pk])
        return HourlyCost.objects.for_tenant(tenant).count()


def budget_save(*, tenant, actor, budget: Budget) -> Budget:
    """Create or change a budget (validated by the caller); running steps see it at their next model call."""
    return _saved(tenant=tenant, actor=actor, row=budget, noun="budget", target=f"budget {budget.name}",
                  data=budget_data, configuration=True)


def _saved(*, tenant, actor, row, noun: str, target: str, data, configuration: bool = False):
    """A tenant's row created or changed, audited, in one transaction (``configuration``: running steps read
    the tenant's configuration afresh)."""
    with transaction.atomic():
        created = row.pk is None
        row.tenant = tenant
        if created:
            row.created_by = actor
        row.save()
        if configuration:
            tenant_config_changed(tenant)
        audit_record(tenant=tenant, actor=actor, verb=f"{noun}.{'created' if created else 'changed'}", target=target,
                     data=data(row))
    return row


def budget_delete(*, tenant, actor, budget: Budget) -> None:
    with transaction.atomic():
        data = budget_data(budget)
        budget.delete()
        tenant_config_changed(tenant)
        audit_record(tenant=tenant, actor=actor, verb="budget.deleted", target=f"budget {data['name']}", data=data)


def budget_data(budget: Budget) -> dict:
    return {"id": budget.pk, "name": budget.name, "scope": budget.scope, "agent": budget.agent_id, "user": budget.user_id,
            "period": budget.period, "limit_usd": None if budget.limit_usd is None else str(budget.limit_usd),
            "limit_tokens": budget.limit_tokens, "thresholds": budget.thresholds, "action": budget.action,
            "extension_usd": None if budget.extension_usd is None else str(budget.extension_usd),
            "extension_tokens": budget.extension_tokens}


def cost_timezone_set(*, tenant, actor, zone: str) -> None:
    with transaction.atomic():
        CostSettings.objects.update_or_create(tenant=tenant, defaults={"timezone": zone})
        tenant_config_changed(tenant)
        audit_record(tenant=tenant, actor=actor, verb="costs.timezone", data={"timezone": zone})


def price_rule_save(*, tenant, actor, rule: PriceRule) -> PriceRule:
    return _saved(tenant=tenant, actor=actor, row=rule, noun="price_rule",
                  target=f"price rule {rule.provider}:{rule.model}", data=price_rule_data)


def price_rule_delete(*, tenant, actor, rule: PriceRule) -> None:
    with transaction.atomic():
        data = price_rule_data(rule)
        rule.delete()
        audit_record(tenant=tenant, actor=actor, verb="price_rule.deleted",
                     target=f"price rule {data['provider']}:{data['model']}", data=data)


def price_rule_data(rule: PriceRule) -> dict:
    return {"id": rule.pk, "provider": rule.provider, "model": rule.model, "kind": rule.kind,
            "effective_from": rule.effective_from.isoformat(),
            **{name: None if getattr(rule, name) is None else str(getattr(rule, name))
               for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "discount_percent")}}


class RepricingRefused(Exception):
    """Another repricing job of the tenant over days that overlap is not finished; the message says which."""


REPRICING_LOCK = 0x434F5354  # the advisory lock's first key ("COST"); the tenant id is the second


def _as_read(job: RepricingJob):
    """The job's row only as it was read: a worker that committed a chunk since (a later heartbeat) keeps it."""
    return RepricingJob.objects.for_tenant(job.tenant_id).filter(pk=job.pk, status=job.status, attempt=job.attempt,
                                                                 heartbeat_at=job.heartbeat_at)


def _queue_again(job: RepricingJob, *, actor, now) -> bool:
    """A job whose lease expired, queued again and sent to a worker after commit: its next claim raises the
    attempt, so a worker of the old attempt commits nothing more, and it goes on from its last committed
    chunk. False when the job showed life since it was read."""
    from costs.tasks import reprice

    if not _as_read(job).update(status="queued", heartbeat_at=now):
        return False
    audit_record(tenant=job.tenant_id, actor=actor, verb="costs.repricing_resumed", target=f"repricing {job.pk}",
                 data={"done": job.done, "total": job.total})
    transaction.on_commit(lambda: reprice.delay(job.pk))
    return True


def repricing_resume_stalled() -> int:
    """Beat's sweep: every job whose worker stopped (lease expired; or queued so long its task was lost) is
    queued again and continued from its last committed chunk, as starting the same days again would. The
    heartbeat it sets keeps a job waiting in a busy queue from being sent again until another lease passes.
    Across tenants by design: a system task that only re-sends job ids; each job's own row is updated
    through its tenant's scope. Returns how many it sent."""
    now = timezone.now()
    stale = RepricingJob.objects.filter(status__in=("queued", "running")).filter(
        Q(heartbeat_at__lt=now - RepricingJob.LEASE) | Q(heartbeat_at=None, created_at__lt=now - RepricingJob.LEASE))
    sent = 0
    for job in stale.order_by("pk")[:100]:
        with transaction.atomic():
            sent += _queue_again(job, actor=None, now=now)
    return sent


def repricing_start(*, tenant, actor, first_day, last_day) -> RepricingJob:
    """A repricing job over the days (both included, in the tenant's zone), run by a worker after commit.
    Refused (RepricingRefused) while a job over overlapping days is queued or running and alive (its lease
    not expired): two jobs would each version the same rows from the same old amounts. A job whose lease
    expired (its worker died) blocks nothing: over the same days it is continued, from its last committed
    chunk (the same job, queued again); over other days it is marked abandoned (what it committed stands:
    each chunk was one transaction) and the new job reads the rows as they are now. The check and the new
    job are made under a tenant's advisory lock, so two starts at once cannot both pass it."""
    from costs.tasks import reprice

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [REPRICING_LOCK, tenant.pk])
        busy = list(RepricingJob.objects.for_tenant(tenant).filter(
            status__in=("queued", "running"), first_day__lte=last_day, last_day__gte=first_day).order_by("pk"))
        now = timezone.now()
        alive = next((job for job in busy if not job.lease_expired(now)), None)
        if alive is not None:
            raise RepricingRefused(
                f"Repricing job #{alive.pk} ({alive.first_day.isoformat()} to {alive.last_day.isoformat()}) is still "
                f"{alive.status} over days this range includes; wait for it to finish, then start this one.")
        same = next((job for job in busy if (job.first_day, job.last_day) == (first_day, last_day)), None)
        for job in busy:
            if job is same:
                taken = _queue_again(job, actor=actor, now=now)
            else:
                taken = _as_read(job).update(
                    status="failed", finished_at=now, error=f"Abandoned: its worker stopped at {job.done} of "
                    f"{job.total} calls (no sign of life for {RepricingJob.LEASE.total_seconds() / 60:g} minutes); "
                    f"what it repriced stands.")
            if not taken:
                raise RepricingRefused(f"Repricing job #{job.pk} just showed progress again; wait for it to finish.")
        if same is not None:
            same.refresh_from_db()
            return same
        job = RepricingJob.objects.create(tenant=tenant, first_day=first_day, last_day=last_day, created_by=actor)
        audit_record(tenant=tenant, actor=actor, verb="costs.repricing_started", target=f"repricing {job.pk}",
                     data={"first_day": first_day.isoformat(), "last_day": last_day.isoformat()})
        transaction.on_commit(lambda: reprice.delay(job.pk))
    return job
