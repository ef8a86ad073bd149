"""RunEvents: written in the transaction of the change they describe, published after commit."""

from __future__ import annotations

from django.db import transaction

from agents.models import Run, RunEvent


def emit(run: Run, type: str, payload: dict | None = None) -> RunEvent:
    """Append the next event of a run whose row the caller has locked (dense `seq`)."""
    run.event_seq += 1
    Run.objects.filter(pk=run.pk).update(event_seq=run.event_seq)
    event = RunEvent.objects.create(run=run, seq=run.event_seq, type=type, payload=payload or {})
    _publish_on_commit(run)
    return event


def _publish_on_commit(run: Run) -> None:
    from agents.live import publish_run

    run_id = run.pk
    transaction.on_commit(lambda: publish_run(run_id))
