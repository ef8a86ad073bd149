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
    # One publish per transaction and run: it sends every event after the last one published.
    connection = transaction.get_connection()
    pending = connection.__dict__.setdefault("_proctor_runs_to_publish", set())
    if run.pk in pending:
        return
    pending.add(run.pk)

    def publish():
        pending.discard(run.pk)
        from agents.live import publish_run

        publish_run(run.pk)

    transaction.on_commit(publish)
