"""P4: fan-out. One run's change reaching 1, 10 and 100 open run sockets, against B3, a bare ASGI
websocket broadcast to as many sockets, measured in the same run.

Ours: uvicorn serving ``console.asgi:application`` (production settings, as P3 runs it) in a
subprocess on the bench stack; N websockets on ``/ws/t/<tenant>/runs/<number>/?after=0``, half of them
a reviewer's session and half a member's (they see different run cards, so a commit is rendered
once per role); each first receives its catch-up frame. Then, in this process, a commit on the run:
``agents.services.run_add_instruction`` (one statement in autocommit: the inbox, the run's next seq and
its ``instruction.added`` event, ``run_store.run_instruction_add``; the publish goes out after commit) → the Channels layer (Redis) →
each socket's consumer sends its frame (here the one new timeline row, rendered once per web process
from the event the message carries). The clock starts just before the
call and stops, per socket, when a frame carrying that event's seq has been received and parsed.
Between samples, untimed, the inbox is emptied again (a locked write with no event, so nothing
is published), so the run row does not grow over the samples.

B3: uvicorn serving bench/b3_app.py (raw ASGI, no Django, no Channels layer) in a subprocess; the
same client, N websockets; the trigger is ``POST /broadcast`` on a keep-alive connection, and the
app sends one frame of the same size as our frames (the mean measured at that N just before) to
every socket. The clock starts just before the POST.

Both: the client is one asyncio loop on a thread of its own holding every socket (websockets
library, permessage-deflate as negotiated by default, as a browser does); each received frame is
timestamped and parsed there. Two statistics per N: per socket (every socket's latency, pooled over
the commits) and per commit (commit → the frame at the last socket).

After the timed part (ours only): half the sockets (of both roles) disconnect, commits are made,
they reconnect with ``?after=<the last seq they got>``, one more commit, and every socket's list of
event seqs received must be exactly 1..last: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import threading
import time
from dataclasses import dataclass, field

from bench.agent_loop import ROOT, _django, _purge_queue, log_path
from bench.click_to_resume import _session, _web
from bench.harness import Context, Row, Summary, asgi_server, summary, summed, table

LEVELS = (1, 10, 100)
SAMPLES = 100  # commits per N (the p99 of the per-commit times wants at least 100)
WARMUP = 10
AFTER_RECONNECT = 5  # commits made while half the sockets are away
GC_NOTE = (" The web process freezes what its startup loaded out of the garbage collector (console/asgi.py): "
           "before, full collections paused every socket of the process for 120-200 ms at N=100, the p99 there.")


# --- the client: every socket on one loop of its own ---------------------------------------------


class Client:
    """An asyncio loop on its own thread; the bench's main thread hands it coroutines."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-p4-client", daemon=True)
        self.thread.start()

    def call(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Watcher:
    """One websocket: the event seqs it received in order, when each arrived, the sizes of its frames."""

    url: str
    headers: dict
    role: str = ""
    seqs: list[int] = field(default_factory=list)
    arrived: dict[int, float] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)
    socket: object = None
    reader: asyncio.Task | None = None

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0


class Group:
    """The open watchers and the seq the bench waits for: ``done`` is set when every one of them has it."""

    def __init__(self):
        self.watchers: list[Watcher] = []
        self.target = 0
        self.remaining = 0
        self.done = threading.Event()

    async def open(self, watcher: Watcher) -> None:
        from websockets.asyncio.client import connect

        watcher.socket = await connect(watcher.url, additional_headers=watcher.headers, max_size=None, open_timeout=30)
        watcher.reader = asyncio.create_task(self._read(watcher))
        self.watchers.append(watcher)

    async def open_all(self, watchers: list[Watcher], at_once: int = 10) -> None:
        gate = asyncio.Semaphore(at_once)

        async def one(watcher: Watcher) -> None:
            async with gate:
                await self.open(watcher)

        await asyncio.gather(*(one(w) for w in watchers))

    async def close(self, watchers: list[Watcher]) -> None:
        for watcher in watchers:
            self.watchers.remove(watcher)
            await watcher.socket.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher.reader

    async def _read(self, watcher: Watcher) -> None:
        clock = time.perf_counter
        async for text in watcher.socket:
            now = clock()
            frame = json.loads(text)
            seqs = [event["seq"] for event in frame.get("events", [])]
            for seq in seqs:
                watcher.arrived.setdefault(seq, now)
                watcher.sizes[seq] = len(text)
            watcher.seqs.extend(seqs)
            if self.remaining and self.target in seqs and watcher in self.watchers:
                self.remaining -= 1
                if not self.remaining:
                    self.done.set()

    async def expect(self, seq: int) -> None:
        """From now on, ``done`` is set once every open watcher has received ``seq``."""
        self.target = seq
        self.remaining = sum(seq not in w.arrived for w in self.watchers)
        self.done.clear()
        if not self.remaining:
            self.done.set()


def _timed(client: Client, group: Group, seq: int, trigger) -> tuple[float, list[float]]:
    """Run ``trigger`` with ``seq`` expected: (its return time − start, every socket's arrival − start)."""
    client.call(group.expect(seq))
    started = time.perf_counter()
    trigger()
    returned = time.perf_counter() - started
    if not group.done.wait(15):
        raise RuntimeError(f"P4: seq {seq} did not reach every socket ({group.remaining} of {len(group.watchers)} missing)")
    return returned, [w.arrived[seq] - started for w in group.watchers]


@dataclass
class Level:
    """One N's samples: per socket (pooled), per commit (to the last socket), and after the trigger returned."""

    per_socket: list[float] = field(default_factory=list)
    per_commit: list[float] = field(default_factory=list)
    after_return: list[float] = field(default_factory=list)
    frame_bytes: list[int] = field(default_factory=list)

    def add(self, returned: float, arrivals: list[float]) -> None:
        self.per_socket.extend(arrivals)
        self.per_commit.append(max(arrivals))
        self.after_return.extend(a - returned for a in arrivals)


# --- ours ----------------------------------------------------------------------------------------


def _cast():
    from django.contrib.auth import get_user_model

    from agents.models import Agent
    from console.models import Membership, Role, Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="p4", defaults={"name": "P4 fan-out"})
    users = {}
    for name, role in (("p4-reviewer", Role.REVIEWER), ("p4-member", Role.MEMBER)):
        users[role], _ = get_user_model().objects.get_or_create(username=name)
        Membership.objects.get_or_create(user=users[role], tenant=tenant, defaults={"role": role})
    agent, _ = Agent.objects.update_or_create(
        tenant=tenant, slug="p4-looper",
        defaults={"name": "bench P4 looper", "instructions": "Call noop as often as the goal says.", "model": "demo:noop",
                  "tools": ["noop"], "plan_mode": False})
    return tenant, agent, users[Role.REVIEWER], users[Role.MEMBER]


def _clear_inbox(run) -> None:
    """Untimed, between samples: the instructions added so far leave the inbox (no event, no publish)."""
    from agents.services.control import run_locked

    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        locked.inbox = []


def _ours_level(client: Client, port: int, n: int, tenant, agent, cookies: dict[str, str], reviewer) -> tuple[Level, dict]:
    from agents.models import Run
    from agents.services import run_add_instruction, run_start

    run = run_start(tenant=tenant, agent=agent, goal="Call noop 3 times", requested_by=reviewer)
    base = f"ws://127.0.0.1:{port}/ws/t/{tenant.slug}/runs/{run.number}/"
    origin = f"http://127.0.0.1:{port}"
    roles = ["reviewer" if i % 2 == 0 else "member" for i in range(n)]
    watchers = [Watcher(f"{base}?after=0", {"Cookie": f"sessionid={cookies[role]}", "Origin": origin}, role)
                for role in roles]
    group = Group()
    client.call(group.open_all(watchers))
    seq = Run.objects.get(pk=run.pk).event_seq
    deadline = time.monotonic() + 30
    while any(w.last_seq < seq for w in watchers):  # every catch-up frame is in
        if time.monotonic() > deadline:
            raise RuntimeError("P4: the sockets' catch-up frames did not arrive")
        time.sleep(0.01)

    level = Level()
    for i in range(WARMUP + SAMPLES):
        seq += 1
        returned, arrivals = _timed(client, group, seq, lambda i=i: run_add_instruction(
            run=run, actor=reviewer, text=f"Bench instruction {i}"))
        if i >= WARMUP:
            level.add(returned, arrivals)
            level.frame_bytes.extend(w.sizes[seq] for w in watchers)
        _clear_inbox(run)

    check = _sequence_check(client, group, run, seq, base, reviewer)
    client.call(group.close(list(group.watchers)))
    return level, check


def _sequence_check(client: Client, group: Group, run, seq: int, base: str, reviewer) -> dict:
    """Half the sockets (of both roles) away while commits are made, back with ?after=<their last seq>;
    then every socket must hold exactly the seqs 1..last."""
    from agents.models import Run
    from agents.services import run_add_instruction

    away = [w for i, w in enumerate(group.watchers) if (i // 2) % 2 == 0]
    client.call(group.close(away))
    for i in range(AFTER_RECONNECT):
        seq += 1
        client.call(group.expect(seq))
        run_add_instruction(run=run, actor=reviewer, text=f"While half are away {i}")
        if group.watchers and not group.done.wait(15):
            raise RuntimeError("P4: a commit did not reach the sockets that stayed")
    _clear_inbox(run)
    back = [Watcher(f"{base}?after={w.last_seq}", w.headers, w.role, seqs=list(w.seqs)) for w in away]
    client.call(group.open_all(back))
    seq += 1
    returned, _ = _timed(client, group, seq, lambda: run_add_instruction(run=run, actor=reviewer, text="All back"))
    _clear_inbox(run)
    last = Run.objects.get(pk=run.pk).event_seq
    expected = list(range(1, last + 1))
    bad = [w for w in group.watchers if w.seqs != expected]
    return {"sockets": len(group.watchers), "reconnected": len(back), "last": last, "bad": len(bad),
            "example": (bad[0].seqs[:5], bad[0].seqs[-5:]) if bad else None}


def _floors(tenant, agent, reviewer, samples: int = 200) -> dict[str, list[float]]:
    """Parts of our path alone, in this process, no sockets: the commit (run_add_instruction) and the
    run socket's frame render for one role (what each role's first socket waits for), and of that render
    the run's read (``run_get``: the run with its agent, people and approvals)."""
    from agents.live import events_from_json, render_run_events, render_run_update
    from agents.models import RunEvent
    from agents.run_store import events_json
    from agents.selectors import run_get
    from agents.services import run_add_instruction, run_start

    run = run_start(tenant=tenant, agent=agent, goal="Call noop 3 times", requested_by=reviewer)
    commits, renders, reads, rows = [], [], [], []
    clock = time.perf_counter
    for i in range(samples + 20):
        started = clock()
        locked = run_add_instruction(run=run, actor=reviewer, text=f"Floor {i}")
        committed = clock()
        read = run_get(tenant=tenant, run_id=run.pk)
        got = clock()
        frame = render_run_update(read, locked.event_seq - 1, can_decide=i % 2 == 0)
        rendered = clock()
        carried = [events_json([RunEvent.objects.get(run=run, seq=locked.event_seq)])]  # what the message carries
        row_started = clock()
        timeline = render_run_events(run_id=run.pk, after_seq=locked.event_seq - 1, upto=locked.event_seq,
                                     events=events_from_json(run.pk, carried))
        row_rendered = clock()
        if not frame["events"] or not timeline["events"]:
            raise RuntimeError("P4 floor: the frame has no event")
        _clear_inbox(run)
        if i >= 20:
            commits.append(committed - started)
            renders.append(rendered - committed)
            reads.append(got - committed)
            rows.append(row_rendered - row_started)
    return {"commit": commits, "render": renders, "run_get": reads, "rows": rows}


# --- B3 ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def b3_server():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with asgi_server("bench.b3_app:app", env=env, log=log_path("bench-b3.log"),
                     options=("--timeout-keep-alive", "600")) as port:
        yield port


class B3:
    def __init__(self, client: Client, port: int):
        self.client, self.port, self.seq = client, port, 0
        self.http: http.client.HTTPConnection | None = None

    def broadcast(self, size: int) -> None:
        self.http.request("POST", f"/broadcast?bytes={size}", headers={"Content-Length": "0"})
        response = self.http.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"B3 answered {response.status}")

    def level(self, n: int, size: int) -> Level:
        group = Group()
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)  # a fresh keep-alive connection
        watchers = [Watcher(f"ws://127.0.0.1:{self.port}/ws", {}) for _ in range(n)]
        self.client.call(group.open_all(watchers))
        time.sleep(0.2)  # every socket accepted and in the server's set
        level = Level()
        for i in range(WARMUP + SAMPLES):
            self.seq += 1
            returned, arrivals = _timed(self.client, group, self.seq, lambda: self.broadcast(size))
            if i >= WARMUP:
                level.add(returned, arrivals)
                level.frame_bytes.extend(w.sizes[self.seq] for w in watchers)
        self.client.call(group.close(list(group.watchers)))
        self.http.close()
        return level


# --- the benchmark -------------------------------------------------------------------------------


def run(ctx: Context, levels: tuple[int, ...] = LEVELS) -> str:
    _django(ctx)
    _purge_queue()
    tenant, agent, reviewer, member = _cast()
    cookies = {"reviewer": _session(reviewer), "member": _session(member)}
    client = Client()
    web, port = _web(ctx, log_path("bench-web-p4.log"))
    ours: dict[int, Level] = {}
    b3: dict[int, Level] = {}
    checks: dict[int, dict] = {}
    try:
        with b3_server() as b3_port:
            bare = B3(client, b3_port)
            for n in levels:
                print(f"  P4: {n} run socket(s), {SAMPLES} commits ...", flush=True)
                ours[n], checks[n] = _ours_level(client, port, n, tenant, agent, cookies, reviewer)
                size = round(sum(ours[n].frame_bytes) / len(ours[n].frame_bytes))
                print(f"  P4: B3, {n} socket(s), {SAMPLES} broadcasts of {size} B ...", flush=True)
                b3[n] = bare.level(n, size)
    finally:
        web.terminate()
        web.wait(20)
        client.close()
    print("  P4 floors: the commit and the frame render, alone ...", flush=True)
    floors = {name: summary(samples) for name, samples in _floors(tenant, agent, reviewer).items()}
    _purge_queue()  # run_start enqueued the runs' first steps; no worker here
    return _report(ctx, levels, ours, b3, checks, floors)


def _floor_note(commit: Summary, b1: Summary, b2: Summary, one: Summary) -> str:
    """What would get under the target at N=1 when the floor there (the commit + B2 + B3) is over it."""
    floor = commit.p50 + b2.p50 + one.p50
    if floor <= 3 * one.p50:
        return ""
    return (f" At N=1 the floor itself is {floor / one.p50:.1f}× B3 at p50, over the 3× target: under it only with a "
            f"commit as cheap as B1's bare INSERT ({(b1.p50 + b2.p50 + one.p50) / one.p50:.1f}× B3 with it in the sum; "
            f"ours is one UPDATE … RETURNING the run with its event's INSERT, the run built for the caller and the "
            f"publish queued) or a frame sent before the commit is known (then a page could show what never committed).")


def _report(ctx: Context, levels, ours: dict[int, Level], b3: dict[int, Level], checks: dict[int, dict],
            floors: dict[str, Summary]) -> str:
    rows = []
    for n in levels:
        ref_socket, ref_commit = summary(b3[n].per_socket), summary(b3[n].per_commit)
        rows += [
            Row(f"P4 N={n}: commit → frame, per socket", summary(ours[n].per_socket), "B3", ref_socket,
                note="headline; target p50 ≤ 3×, p99 ≤ 5×"),
            Row(f"P4 N={n}: commit → frame at the last socket, per commit", summary(ours[n].per_commit), "B3",
                ref_commit, note="vs B3 per broadcast"),
            Row(f"P4 N={n}: of which after the commit returned, per socket", summary(ours[n].after_return), "B3",
                ref_socket),
            Row(f"B3 N={n}: POST → frame, per socket", ref_socket, "B3", ref_socket),
            Row(f"B3 N={n}: POST → frame at the last socket, per broadcast", ref_commit, "B3", ref_commit),
        ]
    b1 = ctx.baseline("B1")
    b2 = ctx.baseline("B2")
    one = summary(b3[levels[0]].per_socket)
    rows += [Row("floor: the commit alone (run_add_instruction, in process)", floors["commit"], f"B3 N={levels[0]}", one),
             Row("floor: a run socket's frame render alone (one role)", floors["render"], f"B3 N={levels[0]}", one,
                 note="run_get + events + plan + 3 partials"),
             Row("of which run_get (the run, its agent, people, approvals)", floors["run_get"], f"B3 N={levels[0]}", one,
                 note="run_shown (SQL) + approvals (ORM)"),
             Row("floor: a timeline-only frame from the carried events", floors["rows"], f"B3 N={levels[0]}", one,
                 note="what these commits render: no read"),
             Row("B2 Redis publish → subscriber (same run)", b2, f"B3 N={levels[0]}", one),
             Row("B1 (same run)", b1, f"B3 N={levels[0]}", one)]
    for n in levels:  # what no design removes: the commit, one hop through Redis, and the broadcast itself
        ref = summary(b3[n].per_socket)
        rows.append(Row(f"floor at N={n}: the commit + B2 + B3 N={n}, summed", summed(floors["commit"], b2, ref), "B3",
                        ref, note="their p50s and p99s added"))
    sizes = {n: round(sum(ours[n].frame_bytes) / len(ours[n].frame_bytes)) for n in levels}
    check_lines = ["| N | sockets at the end | of which reconnected with ?after | last seq | sockets with a gap or duplicate |",
                   "|---|---|---|---|---|"]
    for n in levels:
        c = checks[n]
        check_lines.append(f"| {n} | {c['sockets']} | {c['reconnected']} | {c['last']} | "
                           f"**{c['bad']}**{' e.g. ' + str(c['example']) if c['example'] else ''} |")
    notes = (
        f"Ours: uvicorn (one process) serving console.asgi with production settings (DEBUG off), the bench stack's "
        f"Redis as the Channels layer; N run sockets on one run (`?after=0`, so each gets its catch-up frame first), "
        f"half a reviewer's session, half a member's; the commit is `run_add_instruction` in the bench process (one "
        f"UPDATE of the run with its event's INSERT, in autocommit: one round trip), which publishes after commit from "
        f"its background loop. One sample per socket = the call's start → that socket has "
        f"received and parsed a frame with the event's seq; per commit = the same to the last socket. {SAMPLES} commits "
        f"per N after {WARMUP} warm-up commits (so {', '.join(f'{SAMPLES * n:,}' for n in levels)} per-socket samples). "
        f"Mean frame: {', '.join(f'{sizes[n]:,} B at N={n}' for n in levels)} (the new timeline row). "
        f"B3: bench/b3_app.py, a raw ASGI app under uvicorn (one process), no Django and no Channels layer: "
        f"`POST /broadcast` sends one frame of the same size to every open socket in turn; sample = the POST's start → "
        f"the frame at a socket. The client (both): one asyncio loop on its own thread in the bench process, the "
        f"websockets library with permessage-deflate as negotiated by default. Floors, in process with no socket: the "
        f"commit alone; the whole frame for one role (run_get + the run card, plan and event row partials), which a "
        f"commit that changes the card costs once per role present (SharedFrames), on the web process's thread pool: "
        f"{floors['render'].p50 / one.p50:.1f}× B3 (N={levels[0]}) at p50, {floors['run_get'].p50 / floors['render'].p50:.0%} "
        f"of it `run_get`; and the timeline-only frame. The commit measured here (an instruction) changes nothing the "
        f"run card, plan or controls show, so its message carries its event and each web process renders the one row "
        f"for every role and socket, without a read or the hop to the thread pool (agents.live.timeline_update). "
        f"What is left after the commit: the channel layer's group send (one PUBLISH, written as the background loop "
        f"hears of the commit), its delivery to the web process, which decodes it once and hands it to each of its "
        f"sockets on the event loop (console.channel_layer, console.sockets), the row's render (once), each socket's "
        f"send. The last rows add what no design removes at each N: the commit, one "
        f"Redis hop (B2) and the broadcast itself (B3). The commit alone is "
        f"{floors['commit'].p50 / one.p50:.1f}× B3 (N={levels[0]}) and {floors['commit'].p50 / b1.p50:.1f}× B1 at p50"
        f"{': over the 3× target by itself' if floors['commit'].p50 > 3 * one.p50 else ''}."
        f"{_floor_note(floors['commit'], b1, b2, one)}"
        f"{GC_NOTE}"
    )
    return (table(rows) + "\n\nSequence check after the timed part (half the sockets away for "
            f"{AFTER_RECONNECT} commits, back with ?after=<their last seq>, one more commit):\n\n"
            + "\n".join(check_lines) + "\n\n" + notes)
