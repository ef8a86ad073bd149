"""Live updates. The database is the truth: the publisher only says "run X changed up
to seq N"; every socket reads what it has not seen yet from RunEvent and renders it
with the same partials the page uses. Replay on reconnect is the same code path."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

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
                _announce_row(loop, run_id, latest_tenant)
        except Exception:  # Redis down: the events are committed; browsers catch up when they reconnect
            logger.warning("could not publish run %s", run_id, exc_info=True)
        finally:
            _sending.discard(run_id)

    loop.call_soon_threadsafe(queue)


ROW_INTERVAL = 0.25  # seconds: a run's row on the runs list is announced at most this often
_row_sent_at: dict[int, float] = {}  # run id → when its row was last announced (loop time)
_row_pending: set[int] = set()  # runs whose row is announced when their interval is over


def _announce_row(loop: asyncio.AbstractEventLoop, run_id: int, tenant_id: int) -> None:
    """The runs list hears of a run at most every ROW_INTERVAL: a run taking a step every few
    milliseconds costs the list's sockets a few renders a second, not hundreds. The last change is
    never lost: a change inside the interval is announced when it is over (the row is read then)."""
    if run_id in _row_pending:
        return
    wait = _row_sent_at.get(run_id, -ROW_INTERVAL) + ROW_INTERVAL - loop.time()

    def announce():
        _row_pending.discard(run_id)
        _row_sent_at[run_id] = loop.time()
        if len(_row_sent_at) > 10_000:  # forget runs not heard of for a while
            for stale in [r for r, at in _row_sent_at.items() if at < loop.time() - 10 * ROW_INTERVAL]:
                del _row_sent_at[stale]
        aio.submit(get_channel_layer().group_send(tenant_group(tenant_id), {"type": "runs.changed", "run_id": run_id}),
                   f"announce run {run_id} to the runs list")

    if wait <= 0:
        announce()
    else:
        _row_pending.add(run_id)
        loop.call_later(wait, announce)


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
            # Only a planning agent's runs have a plan: no query for the others.
            "run-plan": render_to_string("agents/partials/run_plan.html",
                                         {"run": run, "plan": run_plan(run=run) if run.agent.plan_mode else []}),
            "run-controls": render_to_string("agents/partials/run_controls.html", {"run": run}),
        },
        "append": {"run-timeline": "".join(render_to_string("agents/partials/event_row.html", {"event": e}) for e in events)},
        "events": [{"seq": e.seq, "type": e.type} for e in events],
    }


class SharedFrames:
    """A run page's update rendered once per (run, seq it starts after, what the role may see) and
    sent to every socket of this process that needs that very frame: sockets watching live are in
    step, so a commit costs one render per role, not one per viewer. A socket a moment late (or
    catching up from the same seq) reuses the frame while it reaches as far as the socket has heard.
    Only the event loop touches it."""

    def __init__(self, keep: int = 1024):
        self.keep = keep
        self._frames: OrderedDict[tuple, asyncio.Future] = OrderedDict()

    async def frame(self, key: tuple, *, heard: int, render: Callable[[], Awaitable[dict]]) -> dict:
        """``heard``: the highest seq the socket was told of; a frame that stops short of it is made again."""
        shared = self._frames.get(key)
        if shared is not None:
            self._frames.move_to_end(key)
            if not shared.done() or shared.result()["seq"] >= heard:
                try:
                    update = await asyncio.shield(shared)
                except Exception:
                    update = None
                if update is not None and update["seq"] >= heard:
                    return update
        future = asyncio.get_running_loop().create_future()
        self._frames[key] = future
        while len(self._frames) > self.keep:
            self._frames.popitem(last=False)
        try:
            update = await render()
        except BaseException as error:
            self._frames.pop(key, None)
            future.set_exception(error)
            future.exception()  # retrieved: sockets that shared it re-render on their own
            raise
        future.set_result(update)
        return update


shared_frames = SharedFrames()


def render_run_rows(runs: list[Run]) -> dict:
    """The whole list as the page renders it: what a runs list socket sends after a reconnect."""
    return {"replace": {"run-rows": render_to_string("agents/partials/run_rows.html", {"runs": runs})}}


def render_run_row(run: Run) -> dict:
    return {"replace_or_prepend": {"id": f"run-row-{run.number}", "container": "run-rows",
                                   "html": render_to_string("agents/partials/run_row.html", {"run": run})}}
