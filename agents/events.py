"""RunEvents: written in the transaction of the change they describe, published after commit."""

from __future__ import annotations

from agents.models import Run, RunEvent


def emit(run: Run, type: str, payload: dict | None = None) -> RunEvent:
    """Append the next event (dense `seq`) of a run the caller writes (``run.writes``: its row locked, or
    read unlocked by the lease holder and checked at the write; see agents.run_store). The transaction's events are written with the run row, in one statement,
    and published once after commit."""
    return run.writes.event(type, payload or {})
