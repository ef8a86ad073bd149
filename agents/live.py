"""Live updates. The database is the truth: the publisher only says "run X changed up
to seq N"; every socket reads what it has not seen yet from RunEvent and renders it
with the same partials the page uses. Replay on reconnect is the same code path."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from agents.models import Run
from agents.selectors import run_events_after, run_plan


logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def tenant_group(tenant_id: int) -> str:
    return f"tenant-{tenant_id}"


def publish_run(run_id: int) -> None:
    """After commit. Channels delivery is at-most-once; a lost message is caught up on the next one or on reconnect."""
    run = Run.objects.filter(pk=run_id).values("event_seq", "tenant_id").first()
    if run is None:
        return
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(run_group(run_id), {"type": "run.changed", "seq": run["event_seq"]})
        async_to_sync(layer.group_send)(tenant_group(run["tenant_id"]), {"type": "runs.changed", "run_id": run_id})
    except Exception:  # Redis down: the events are committed; browsers catch up when they reconnect
        logger.warning("could not publish run %s", run_id, exc_info=True)


def render_run_update(run: Run, after_seq: int, *, can_decide: bool) -> dict:
    """What a run page's socket needs to catch up from `after_seq` (the viewer's role decides the card's buttons)."""
    events = run_events_after(run=run, after=after_seq)
    return {
        "seq": events[-1].seq if events else after_seq,
        "replace": {
            "run-card": render_to_string("agents/partials/run_card.html", {"run": run, "can_decide": can_decide}),
            "run-plan": render_to_string("agents/partials/run_plan.html", {"run": run, "plan": run_plan(run=run)}),
        },
        "append": {"run-timeline": "".join(render_to_string("agents/partials/event_row.html", {"event": e}) for e in events)},
        "events": [{"seq": e.seq, "type": e.type} for e in events],
    }


def render_run_row(run: Run) -> dict:
    return {"replace_or_prepend": {"id": f"run-row-{run.pk}", "container": "run-rows",
                                   "html": render_to_string("agents/partials/run_row.html", {"run": run})}}
