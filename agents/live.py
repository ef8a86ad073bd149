"""Live updates. The database is the truth: the publisher only says "run X changed up
to seq N"; every socket reads what it has not seen yet from RunEvent and renders it
with the same partials the page uses. Replay on reconnect is the same code path."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cached_property, partial

from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from agents.models import Run, RunEvent
from agents.run_store import events_json
from agents.selectors import EVENTS_PAGE, run_events_after, run_events_between, run_plan
from console import aio

logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def tenant_group(tenant_id: int) -> str:
    return f"tenant-{tenant_id}"


# Run columns no partial of the run page shows (run card, plan, controls): a transaction that changes only
# these, with only EVENTS_ONLY events, leaves those partials as they were and its frame is its event rows.
# A column added to Run counts as shown until it is listed here.
NOT_SHOWN = frozenset({"event_seq", "inbox", "lease_owner", "lease_expires_at", "fence", "trace_id", "idempotency_key",
                       "idempotency_fingerprint", "updated_at", "version"})
# Events whose transaction writes no approval request or plan step (which the card and plan show too).
EVENTS_ONLY = frozenset({"instruction.added", "instruction.applied", "context.used", "memory.proposal"})


def page_changed(*, columns: frozenset[str], event_types: frozenset[str]) -> bool:
    """Whether a transaction that changed these run columns and wrote these events changed what the run
    card, plan or controls show (when in doubt: yes)."""
    return bool(columns - NOT_SHOWN) or bool(event_types - EVENTS_ONLY)


ROWS_MAX = 4096  # characters: a message's events (one commit's or coalesced ones') travel up to this, else are read

# Touched on the background loop only: run id → (seq, tenant id, first seq, page changed, events as JSON) not
# sent yet; runs with a sender running.
_latest_unsent: dict[int, tuple[int, int, int, bool, list[str]]] = {}
_sending: set[int] = set()


def publish_run(run_id: int, *, seq: int, tenant_id: int, first: int, columns: frozenset[str],
                event_types: frozenset[str], events: list[RunEvent]) -> None:
    """After commit, without waiting: the step goes on while the background loop sends "run changed
    up to ``seq``, from ``first`` (the transaction's first event), whether the card changed" and, when
    only the timeline did and its ``events`` (the transaction's, written) are small, the events
    themselves (``run_store.events_json``), so the sockets render their rows without reading them.
    Commits that come while a run's message is being sent coalesce into one message (the latest seq,
    the earliest first, the card changed if any changed, the events if every part carried them in
    order). Channels delivery is at-most-once; a lost message is caught up on the next one (whose
    ``first`` is then past the socket's seq) or on reconnect."""
    loop = aio.background_loop()
    card = page_changed(columns=columns, event_types=event_types)
    parts = []
    if not card and events and events[0].seq == first and events[-1].seq == seq:  # a step's commits are not encoded
        rows = events_json(events)
        parts = [rows] if len(rows) <= ROWS_MAX else []

    def queue():
        waiting = _latest_unsent.get(run_id)
        if waiting is None:
            _latest_unsent[run_id] = (seq, tenant_id, first, card, parts)
        else:  # never announce less than a message already waiting
            in_order = waiting[4] and parts and first == waiting[0] + 1
            carried = waiting[4] + parts if in_order else []
            if sum(map(len, carried)) > ROWS_MAX:  # grown while Redis was slow: the sockets read them instead
                carried = []
            _latest_unsent[run_id] = (max(seq, waiting[0]), tenant_id, min(first, waiting[2]), card or waiting[3],
                                      carried)
        if run_id not in _sending:
            _sending.add(run_id)
            # Started here, not on the loop's next turn: the PUBLISH is written before this callback returns.
            asyncio.Task(send(), loop=loop, eager_start=True)

    async def send():
        layer = get_channel_layer()
        try:
            while run_id in _latest_unsent:
                latest_seq, latest_tenant, first_seq, card_changed, events = _latest_unsent.pop(run_id)
                message = {"type": "run.changed", "seq": latest_seq, "first": first_seq, "card": card_changed}
                if events:
                    message["rows"] = events
                await layer.group_send(run_group(run_id), message)
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


class Frame(dict):
    """What a run socket sends (seq, replace, append, events). One frame goes to every socket entitled to it
    (SharedFrames): its JSON text is made once, not once per socket."""

    @cached_property
    def text(self) -> str:
        return json.dumps(self)


def render_run_update(run: Run, after_seq: int, *, can_decide: bool) -> Frame:
    """What a run page's socket needs to catch up from `after_seq` (the viewer's role decides the card's buttons).
    Nothing is rendered when nothing is new (a page connects with the seq it was rendered at)."""
    if run.event_seq <= after_seq:
        return Frame(seq=after_seq, replace={}, append={}, events=[])
    events = run_events_after(run=run, after=after_seq)
    return Frame({
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
    })


def events_from_json(run_id: int, parts: list[str]) -> list[RunEvent]:
    """The events a message carried (``run_store.events_json``), as the rows a read would give."""
    return [RunEvent(run_id=run_id, seq=e["seq"], type=e["type"], payload=e["payload"],
                     at=datetime.fromisoformat(e["at"])) for part in parts for e in json.loads(part)]


def render_run_events(*, run_id: int, after_seq: int, upto: int, events: list[RunEvent] | None = None) -> Frame:
    """The frame of a commit that changed only the timeline (``publish_run``'s card flag off): the event
    rows after ``after_seq`` up to ``upto`` and nothing else, the same for every role; no read of the run,
    and none of the events when the message carried them."""
    if events is None:
        events = run_events_between(run_id=run_id, after=after_seq, upto=upto)
    return Frame({
        "seq": events[-1].seq if events else after_seq,
        "replace": {},
        "append": {"run-timeline": "".join(render_to_string("agents/partials/event_row.html", {"event": e})
                                           for e in events)},
        "events": [{"seq": e.seq, "type": e.type} for e in events],
    })


class SharedFrames:
    """A run page's update rendered once per (run, seq it starts after, what the role may see) and
    sent to every socket of this process that needs that very frame: sockets watching live are in
    step, so a commit costs one render per role, not one per viewer. A socket a moment late (or
    catching up from the same seq) reuses the frame while it reaches as far as the socket has heard.
    Only the event loop touches it."""

    def __init__(self, keep: int = 1024):
        self.keep = keep
        self._frames: OrderedDict[tuple, asyncio.Future] = OrderedDict()

    async def frame(self, key: tuple, *, heard: int, render: Callable[[], Awaitable[Frame]]) -> Frame:
        """``heard``: the highest seq the socket was told of; a frame that stops short of it is made again."""
        # A frame whose render failed or was cancelled leaves the map before it is settled: one found done has a result.
        while (shared := self._frames.get(key)) is not None:
            self._frames.move_to_end(key)
            if shared.done() and shared.result()["seq"] < heard:
                break  # it stops short: made again
            try:
                update = await asyncio.shield(shared)
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise  # this socket itself went away (even if the frame was finished meanwhile)
                continue  # the socket rendering it went away mid-render: the first one waiting renders it for all
            except Exception:
                continue  # its render failed: made again, once for the sockets that waited for it
            if update["seq"] >= heard:
                return update
            break
        future = asyncio.get_running_loop().create_future()
        self._frames[key] = future
        while len(self._frames) > self.keep:
            self._frames.popitem(last=False)
        try:
            update = await render()
        except BaseException as error:
            if self._frames.get(key) is future:
                del self._frames[key]
            if isinstance(error, asyncio.CancelledError):
                future.cancel()  # its socket went away: the sockets sharing it render on their own
            else:
                future.set_exception(error)
                future.exception()  # retrieved: sockets that shared it re-render on their own
            raise
        future.set_result(update)
        return update


shared_frames = SharedFrames()


async def timeline_update(run_id: int, after: int, message: dict) -> Frame | None:
    """For a run socket at seq ``after``: the frame of the commit ``message`` announces when that commit
    comes right after it and changed only the timeline (its rows, shared by every role and socket of the
    process; from the events the message carried, else read), or None: then the whole frame is needed."""
    seq = message["seq"]
    if message.get("first") != after + 1 or message.get("card") is not False or seq - after > EVENTS_PAGE:
        return None

    async def render() -> Frame:  # once per process: every socket in step awaits this one
        events = events_from_json(run_id, message["rows"]) if message.get("rows") else None
        if events is not None and [e.seq for e in events] == list(range(after + 1, seq + 1)):
            return render_run_events(run_id=run_id, after_seq=after, upto=seq, events=events)  # no read: right here
        return await aio.socket_render(partial(render_run_events, run_id=run_id, after_seq=after, upto=seq))()

    update = await shared_frames.frame((run_id, after, "events", seq), heard=seq, render=render)
    return update if update["seq"] == seq else None


def render_run_rows(runs: list[Run]) -> dict:
    """The whole list as the page renders it: what a runs list socket sends after a reconnect."""
    return {"replace": {"run-rows": render_to_string("agents/partials/run_rows.html", {"runs": runs})}}


def render_run_row(run: Run) -> dict:
    return {"replace_or_prepend": {"id": f"run-row-{run.number}", "container": "run-rows",
                                   "html": render_to_string("agents/partials/run_row.html", {"run": run})}}
