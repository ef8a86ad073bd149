"""Reads for the runs' traces."""

from __future__ import annotations

from traces.models import Span


def span_list(*, tenant, run) -> list[Span]:
    """The run's stored spans (``run``: the run or its id), in the order they started; none for a run
    of another tenant."""
    return list(Span.objects.for_tenant(tenant).filter(run=run).order_by("started_at", "id"))
