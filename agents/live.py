"""Live updates. The database is the truth: the publisher only says "run X changed up
to seq N"; every socket reads what it has not seen yet from RunEvent and renders it
with the same partials the page uses. Replay on reconnect is the same code path."""

from __future__ import annotations

import logging

from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from agents.models import Run
from agents.selectors import run_events_after, run_plan
from console import aio

logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def tenant_group(tenant_id: int) -> str:
    return f"tenant-{tenant_id}"


# Touched on the background loop only: run id → (seq, tenant id) not sent yet; runs with a sender running.
_latest_unsent: dict[int, tuple[int, int]] = {}
_sending: set[int] = set()


def publish_run(run_id: int, *, seq: int, tenant_id: int) -> None:
    """After commit, without waiting: the step goes on while the background loop sends. Commits that
    come while a run's message is being sent coalesce into one message with the latest seq (the
    sockets read the events from the database anyway). Channels delivery is at-most-once; a lost
    message is caught up on the next one or on reconnect."""
    loop = aio.background_loop()

    def queue():
        if seq >= _latest_unsent.get(run_id, (0, 0))[0]:  # never announce less than a message already waiting
            _latest_unsent[run_id] = (seq, tenant_id)
        if run_id not in _sending:
            _sending.add(run_id)
            loop.create_task(send())

    async def send():
        layer = get_channel_layer()
        try:
            while run_id in _latest_unsent:
                latest_seq, latest_tenant = _latest_unsent.pop(run_id)
                await layer.group_send(run_group(run_id), {"type": "run.changed", "seq": latest_seq})
                await layer.group_send(tenant_group(latest_tenant), {"type": "runs.changed", "run_id": run_id})
        except Exception:  # Redis down: the events are committed; browsers catch up when they reconnect
            logger.warning("could not publish run %s", run_id, exc_info=True)
        finally:
            _sending.discard(run_id)

    loop.call_soon_threadsafe(queue)


def render_run_update(run: Run, after_seq: int, *, can_decide: bool) -> dict:
    """What a run page's socket needs to catch up from `after_seq` (the viewer's role decides the card's buttons).
    Nothing is rendered when nothing is new (a page connects with the seq it was rendered at)."""
    if run.event_seq <= after_seq:
        return {"seq": after_seq, "replace": {}, "append": {}, "events": []}
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


def render_run_rows(runs: list[Run]) -> dict:
    """The whole list as the page renders it: what a runs list socket sends after a reconnect."""
    return {"replace": {"run-rows": render_to_string("agents/partials/run_rows.html", {"runs": runs})}}


def render_run_row(run: Run) -> dict:
    return {"replace_or_prepend": {"id": f"run-row-{run.pk}", "container": "run-rows",
                                   "html": render_to_string("agents/partials/run_row.html", {"run": run})}}
