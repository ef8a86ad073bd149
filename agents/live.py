"""Live updates. The database is the truth: the publisher only says "run X changed up
to seq N"; every socket reads what it has not seen yet from RunEvent and renders it
with the same partials the page uses. Replay on reconnect is the same code path."""

from __future__ import annotations


from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from agents.models import Run
from agents.selectors import run_events_after, run_plan
from console import aio




def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def tenant_group(tenant_id: int) -> str:
    return f"tenant-{tenant_id}"


def publish_run(run_id: int, *, seq: int, tenant_id: int) -> None:
    """After commit, without waiting: the step goes on while the background loop sends. Channels
    delivery is at-most-once anyway; a lost message is caught up on the next one or on reconnect."""
    layer = get_channel_layer()

    async def send():
        await layer.group_send(run_group(run_id), {"type": "run.changed", "seq": seq})
        await layer.group_send(tenant_group(tenant_id), {"type": "runs.changed", "run_id": run_id})

    aio.fire(send(), f"publish run {run_id}")


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
