"""The sweeper (Celery beat): runs whose worker died, or that sit queued with no task, are sent again."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from agents.models import RUNNABLE, Run


def runs_sweep() -> int:
    """Re-enqueue runs whose lease expired (crashed worker) or that sit queued with no task.
    Across tenants by design: a system task that only hands run ids to the step task."""
    now = timezone.now()
    # Untouched for a while (a lease outlives that, so an expired one is always old enough), and the
    # sweep touches what it re-sends: a run waiting in a busy queue is not sent again every sweep.
    stale = Run.objects.filter(status__in=RUNNABLE, updated_at__lt=now - timedelta(seconds=settings.RUN_SWEEP_AFTER_SECONDS)
                               ).filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
    ids = list(stale.values_list("id", flat=True)[:500])
    Run.objects.filter(pk__in=ids).update(updated_at=now)
    from agents.tasks import run_step  # the task module imports the services

    for run_id in ids:
        run_step.delay(run_id)
    return len(ids)
