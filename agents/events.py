"""RunEvents: written in the transaction of the change they describe, published after commit."""

from __future__ import annotations

from django.db import transaction

from agents.models import Run, RunEvent


def emit(run: Run, type: str, payload: dict | None = None) -> RunEvent:
    """Append the next event (dense `seq`) of a run whose row the caller has locked. The events of a
    transaction are written with the run row, in one statement (agents.run_store.run_write)."""
    run.event_seq += 1
    event = RunEvent(run=run, seq=run.event_seq, type=type, payload=payload or {})
    run.__dict__.setdefault("_events_to_write", []).append(event)
    _publish_on_commit(run)
    return event


def _publish_on_commit(run: Run) -> None:
    """One publish per run and transaction: it announces the last seq, whatever came before it.

    The mark lives on the locked instance, which lives as long as its transaction, so a
    rolled-back transaction cannot leave it set for a later one.
    """
    if getattr(run, "_publish_pending", False):
        return
    run._publish_pending = True

    def publish():
        from agents.live import publish_run

        run._publish_pending = False
        publish_run(run.pk, seq=run.event_seq, tenant_id=run.tenant_id)

    transaction.on_commit(publish)
