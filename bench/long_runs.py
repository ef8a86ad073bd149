"""P8: long runs. Does a step cost the same at step 1,000 as at step 1, in time and in bytes written?

Ours: runs of the demo ``noop`` looper ("Call noop 1000 times": 1,000 tool calls and the answer),
each stepped in this process by one ``run_advance`` call (RUN_TURN_SECONDS set high, so one turn takes
every step; no worker, no broker). Everything else is the real runtime: lease, fenced
transactions, conversation rows, checkpoint, events, ModelCall and ToolInvocation rows, spans
(the traces app's database sink, batched), the publish after each commit.

Per-step time: ``agents.services.step._model_step`` (a step: the model call, then one transaction
with the reply, the tool — ``noop`` is transactional, so it runs in that transaction — the
checkpoint, the events and the next step's boundary) is wrapped to take a timestamp at its start;
one sample = one step's start → the next step's start (so it also holds the step span and
run_advance's loop), the same shape as LG's agent node start → next agent node start. The final
answer is not a sample.

Bytes: from the rows of a timed run, step by step (``pg_column_size``, i.e. as stored), and WAL from
``pg_current_wal_insert_lsn()`` read at step starts in one more run of the same length (the
probes are kept out of the timed runs): WAL per step = the WAL between the start of step a and the
start of step b, / (b − a). Spans are flushed (``force_flush``) before each reading, so a window
holds its steps' spans and no others; pg_waldump says what that WAL is made of. LG: its three
checkpoint tables' rows per step (a step is two LangGraph supersteps: agent, tool), and WAL read
in its one timed run (LG-msgs takes minutes for 1,000 steps).

The state change of a step = its new conversation messages (compact JSON) + our small state
(RunState's compact JSON) when the step changed it: what a step has to make durable, at the least.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from bench.agent_loop import _django, _purge_queue
from bench.harness import Context
from bench.langgraph_peer import FORMS, Probe, build_graph, run_once, saver

STEPS = 1000
CURVE = (1, 10, 100, 500, 1000)
WINDOW = 10  # steps per WAL window and per time median on the curve


def _compact(value) -> int:
    return len(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def _windows(steps: int) -> dict[int, tuple[int, int]]:
    """Curve point p → the steps [a, b) its WAL and time median cover: the WINDOW steps ending at p
    (step 1: itself alone)."""
    return {p: (max(1, p - WINDOW + 1), p + 1) for p in _curve(steps)}


def _curve(steps: int) -> tuple[int, ...]:
    return tuple(sorted({min(p, steps) for p in CURVE}))


def _lsn(conn, which: str = "insert") -> int:
    """The WAL position (``insert``: where the next record goes; ``flush``: what is on disk), as bytes."""
    high, low = str(conn.execute(f"SELECT pg_current_wal_{which}_lsn()").fetchone()[0]).split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class Curve:
    """One system's long run: per-step seconds (index 0 = step 1), rows per step, WAL per window."""

    name: str
    runs: list[list[float]]  # per timed run: per-step seconds, index 0 = step 1
    model: list[list[float]]  # per timed run: each step's model call alone (pydantic-ai's request), seconds
    rows: dict[int, int] = field(default_factory=dict)  # step → bytes of the rows it wrote
    raw: dict[int, int] = field(default_factory=dict)  # step → the same, uncompressed (LG's blobs)
    wal: dict[int, float] = field(default_factory=dict)  # curve point → WAL bytes per step over its window
    records: list = field(default_factory=list)  # the last window's WAL by record type (see _wal_records)

    def median(self, first: int, last: int, part: str = "step") -> float:
        """Median seconds of steps first..last, pooled over the timed runs: of the step, of its model call
        alone ("model"), or of the step without its model call ("rest")."""
        if part == "rest":
            series = [[s - m for s, m in zip(steps, model, strict=False)] for steps, model in zip(self.runs, self.model,
                                                                                              strict=True)]
        else:
            series = self.model if part == "model" else self.runs
        return statistics.median(s for samples in series for s in samples[first - 1:last])


def _wal(marks: dict[int, int], windows: dict[int, tuple[int, int]]) -> dict[int, float]:
    return {p: (marks[b] - marks[a]) / (b - a) for p, (a, b) in windows.items()}


# --- ours ------------------------------------------------------------------------------------------


def _looper():
    from agents.models import Agent
    from console.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    agent, _ = Agent.objects.update_or_create(
        tenant=tenant, slug="p8-looper",
        defaults={"name": "bench P8 looper", "instructions": "Call noop as often as the goal says.", "model": "demo:noop",
                  "tools": ["noop"], "plan_mode": False, "max_steps": 100_000, "max_tokens": 2_000_000_000,
                  "max_seconds": 86_400, "max_cost_usd": 100_000},
    )
    return tenant, agent


def _ours_run(steps: int, probe: Callable[[int], None] | None = None) -> tuple[list[float], list[float], int]:
    """One run of ``steps`` tool calls in one turn: (per-step seconds, each step's model call alone, run id).
    The model call alone = pydantic-ai's ``model_request`` as the gateway awaits it (on the background loop)."""
    from django.conf import settings

    import agents.gateway as gateway
    import agents.services.step as step_module
    from agents.models import Run
    from agents.services import run_advance, run_start

    tenant, agent = _looper()
    original, request, stamps, model, clock = step_module._model_step, gateway.model_request, [], [], time.perf_counter

    def timed(turn):
        stamps.append(clock())
        if probe is not None:
            probe(len(stamps))
        return original(turn)

    async def timed_request(*args, **kwargs):
        started = clock()
        response = await request(*args, **kwargs)
        model.append(clock() - started)
        return response

    turn_seconds = settings.RUN_TURN_SECONDS
    settings.RUN_TURN_SECONDS = 24 * 3600
    step_module._model_step, gateway.model_request = timed, timed_request
    try:
        run = run_start(tenant=tenant, agent=agent, goal=f"Call noop {steps} times")
        outcome = run_advance(run_id=run.pk, worker="bench-p8")
    finally:
        step_module._model_step, gateway.model_request = original, request
        settings.RUN_TURN_SECONDS = turn_seconds
    status = Run.objects.get(pk=run.pk).status
    if outcome != "completed" or status != "completed" or len(stamps) != steps + 1 or len(model) != steps + 1:
        raise RuntimeError(f"P8 run {run.pk} ended {outcome}/{status} after {len(stamps)} steps and "
                           f"{len(model)} model calls")
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)], model[:steps], run.pk


_COUNT = "SELECT count(*), sum(pg_column_size(t.*)) FROM "
_OF_STEP = " t WHERE run_id = %(run)s AND step = %(step)s"
ROW_BYTES = {
    # table → SQL for (rows, bytes as stored) of one step of a run; %(run)s, %(step)s, and for events the
    # seq range of the step (from its model.call event to the next step's)
    "checkpoint": _COUNT + "agents_checkpoint" + _OF_STEP,
    "messages": _COUNT + "agents_conversationmessage" + _OF_STEP,
    "events": _COUNT + "agents_runevent t WHERE run_id = %(run)s AND seq >= %(first)s AND seq < %(next)s",
    "model call": _COUNT + "agents_modelcall" + _OF_STEP,
    "tool invocation": _COUNT + "agents_toolinvocation" + _OF_STEP,
    "run row (new version)": "SELECT 1, pg_column_size(t.*) FROM agents_run t WHERE id = %(run)s",
    "spans": _COUNT + """traces_span t WHERE run_id = %(run)s AND (
                  (attributes->>'proctor.step')::int = %(step)s OR parent_span_id IN (
                    SELECT span_id FROM traces_span s
                     WHERE s.run_id = %(run)s AND (s.attributes->>'proctor.step')::int = %(step)s))""",
}


def _ours_rows(conn, run_id: int, step: int) -> dict[str, tuple[int, int]]:
    """Table → (rows, bytes) that step ``step`` of the run wrote."""
    seqs = dict(conn.execute("SELECT (payload->>'step')::int, seq FROM agents_runevent WHERE run_id = %s AND type = 'model.call'"
                             " AND (payload->>'step')::int IN (%s, %s)", (run_id, step, step + 1)).fetchall())
    params = {"run": run_id, "step": step, "first": seqs[step], "next": seqs.get(step + 1, 1 << 30)}
    return {name: tuple(int(v or 0) for v in conn.execute(sql, params).fetchone()) for name, sql in ROW_BYTES.items()}


def _state_change(conn, run_id: int, step: int) -> tuple[int, int]:
    """(the step's new messages as compact JSON, its small state as compact JSON if it changed), in bytes.
    A step that left the state as it was writes no checkpoint: that part of its change is 0."""
    messages = [m for (m,) in conn.execute("SELECT message FROM agents_conversationmessage WHERE run_id = %s AND step = %s",
                                            (run_id, step))]
    written = conn.execute("SELECT state FROM agents_checkpoint WHERE run_id = %s AND step = %s", (run_id, step)).fetchone()
    return sum(_compact(m) for m in messages), _compact(written[0]) if written else 0


def _settle(seconds: float = 2.0) -> None:
    """Before a timed run: the spans of the last one stored, and a pause for what its thousands of rows
    set off in Postgres (autovacuum, autoanalyze), so none of it lands on the next run's first steps."""
    _flush_spans()
    time.sleep(seconds)


def _flush_spans() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()


# --- LangGraph -------------------------------------------------------------------------------------


def _lg_rows(conn, thread_id: str) -> tuple[dict[int, int], dict[int, int]]:
    """Our step k (agent superstep 2k−1, tool superstep 2k) → (bytes as stored, bytes uncompressed) of the
    rows LangGraph's checkpointer wrote for it: the checkpoints, the blobs they introduced (a channel's new
    version), the writes of the tasks that ran from the checkpoint before."""
    checkpoints = conn.execute(
        "SELECT checkpoint_id, parent_checkpoint_id, (metadata->>'step')::int, checkpoint->'channel_versions',"
        " pg_column_size(t.*), pg_column_size(t.*) - pg_column_size(checkpoint) - pg_column_size(metadata)"
        " + octet_length(checkpoint::text) + octet_length(metadata::text)"
        " FROM checkpoints t WHERE thread_id = %s ORDER BY (metadata->>'step')::int", (thread_id,)).fetchall()
    blobs = {(ch, v): (size, raw) for ch, v, size, raw in conn.execute(
        "SELECT channel, version, pg_column_size(t.*), pg_column_size(t.*) - coalesce(pg_column_size(blob), 0)"
        " + coalesce(octet_length(blob), 0) FROM checkpoint_blobs t WHERE thread_id = %s", (thread_id,))}
    writes: dict[str, tuple[int, int]] = {}
    for checkpoint_id, size, raw in conn.execute(
            "SELECT checkpoint_id, sum(pg_column_size(t.*)), sum(pg_column_size(t.*) - coalesce(pg_column_size(blob), 0)"
            " + coalesce(octet_length(blob), 0)) FROM checkpoint_writes t WHERE thread_id = %s GROUP BY checkpoint_id",
            (thread_id,)):
        writes[checkpoint_id] = (int(size), int(raw))
    stored: dict[int, int] = {}
    uncompressed: dict[int, int] = {}
    seen: set = set()
    for checkpoint_id, parent, superstep, versions, size, raw in checkpoints:
        new = {(ch, v) for ch, v in (versions or {}).items()} - seen
        seen |= new
        if superstep < 1:
            continue
        step = (superstep + 1) // 2
        add_size = size + sum(blobs.get(key, (0, 0))[0] for key in new) + writes.get(parent, (0, 0))[0]
        add_raw = raw + sum(blobs.get(key, (0, 0))[1] for key in new) + writes.get(parent, (0, 0))[1]
        stored[step] = stored.get(step, 0) + add_size
        uncompressed[step] = uncompressed.get(step, 0) + add_raw
    return stored, uncompressed


def _lg_curve(ctx: Context, form: str, steps: int, windows: dict[int, tuple[int, int]], conn) -> Curve:
    """One timed run of the LG peer. The WAL probes (one SELECT on another connection, ~0.2 ms, at the
    step starts that bound the windows: 9 of 1,000) are read in that same run: LG-msgs takes minutes
    for 1,000 steps, and its steps and LG's are milliseconds long by then."""
    marks: dict[int, int] = {}
    wanted = {edge for window in windows.values() for edge in window}
    with saver(ctx) as checkpointer:
        checkpointer.setup()
        probe = Probe()
        app = build_graph(checkpointer, form, probe)
        run_once(app, form, 20, probe)  # warm-up
        _settle()
        print(f"  P8: {FORMS[form]}, {steps} steps ...", flush=True)
        probe.at = lambda k: marks.__setitem__(k, _lsn(conn)) if k in wanted else None
        samples, thread_id = run_once(app, form, steps, probe)
        model = probe.model[:steps]
        stored, raw = _lg_rows(conn, thread_id)
    end = windows[max(windows)]
    return Curve(FORMS[form].split(" ")[0], [samples], [model], stored, raw, _wal(marks, windows),
                 _wal_records(conn, marks[end[0]], marks[end[1]], end[1] - end[0]))


INDEXES = """SELECT c.relname, count(*), string_agg(i.relname, ', ' ORDER BY i.relname)
               FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
              WHERE c.relname = ANY(%s) GROUP BY c.relname ORDER BY c.relname"""
TABLES = ["agents_checkpoint", "agents_conversationmessage", "agents_runevent", "agents_modelcall",
          "agents_toolinvocation", "agents_run", "traces_span"]


def _indexes(conn) -> list[tuple[str, int, str]]:
    """The indexes each of a step's rows updates (table, count, names)."""
    return conn.execute(INDEXES, (TABLES,)).fetchall()


def _hot_updates(conn) -> tuple[int, int]:
    """(updates, HOT updates) of agents_run so far: a HOT update writes no index entries."""
    return conn.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'agents_run'").fetchone()


def _lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _wal_records(conn, start: int, end: int, steps: int) -> list[tuple[str, float, float]]:
    """What the WAL between two positions holds, by record type (pg_waldump --stats=record): (type, records
    per step, bytes per step), largest first. Empty when pg_waldump or the data directory is not at hand."""
    import re
    import subprocess

    try:
        from pgembed._commands import POSTGRES_BIN_PATH

        (data_dir,) = conn.execute("SHOW data_directory").fetchone()
        deadline = time.monotonic() + 10
        while _lsn(conn, "flush") < end and time.monotonic() < deadline:
            time.sleep(0.05)
        out = subprocess.run([str(POSTGRES_BIN_PATH / "pg_waldump"), "--stats=record", "-p", f"{data_dir}/pg_wal",
                              "-s", _lsn_text(start), "-e", _lsn_text(end)], capture_output=True, text=True, timeout=60)
    except Exception:  # noqa: BLE001 - a diagnostic only
        return []
    rows = []
    for line in out.stdout.splitlines():
        # "Heap/INSERT    1234 ( 12.34)   56789 ( 12.34)   0 ( 0.00)   56789 ( 12.34)"
        match = re.match(r"^(\S+/\S+)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)", line)
        if match:
            rows.append((match.group(1), int(match.group(2)) / steps, int(match.group(5)) / steps))
    return sorted(rows, key=lambda row: -row[2])


# --- the benchmark ---------------------------------------------------------------------------------


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def run(ctx: Context, steps: int = STEPS, lg_forms: tuple[str, ...] = ("json", "msgs"), ours_runs: int = 3) -> str:
    _django(ctx)
    b1 = ctx.baseline("B1")
    windows = _windows(steps)
    points = _curve(steps)
    wanted = {edge for window in windows.values() for edge in window}
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        _ours_run(20)  # warm-up: imports, connections, templates
        timed = []
        for i in range(ours_runs):
            print(f"  P8: ours, {steps} steps in one turn, timed ({i + 1}/{ours_runs}) ...", flush=True)
            _settle()
            timed.append(_ours_run(steps))
        _flush_spans()
        run_id = timed[0][2]
        per_table = {p: _ours_rows(conn, run_id, p) for p in points}
        change = {p: _state_change(conn, run_id, p) for p in points}
        print(f"  P8: ours, {steps} steps, WAL probes ...", flush=True)
        marks: dict[int, int] = {}

        def probe(k: int) -> None:
            if k in wanted:
                _flush_spans()
                marks[k] = _lsn(conn)

        updates_before = _hot_updates(conn)
        _ours_run(steps, probe)
        time.sleep(0.6)  # the statistics collector's counters are flushed at most every 0.5 s
        conn.execute("SELECT pg_stat_clear_snapshot()")
        updates = tuple(after - before for after, before in zip(_hot_updates(conn), updates_before, strict=True))
        indexes = _indexes(conn)
        _purge_queue()  # run_start enqueued each run's first step; nobody consumes them here
        end = windows[points[-1]]
        ours = Curve("ours", [samples for samples, _, _ in timed], [model for _, model, _ in timed],
                     rows={p: per_table[p]["checkpoint"][1] + per_table[p]["messages"][1] for p in points},
                     wal=_wal(marks, windows), records=_wal_records(conn, marks[end[0]], marks[end[1]], end[1] - end[0]))
        all_rows = {p: sum(b for _, b in per_table[p].values()) for p in points}
        peers = [_lg_curve(ctx, form, steps, windows, conn) for form in lg_forms]
    return _report(steps, b1, windows, points, ours, peers, per_table, all_rows, change, ours_runs, indexes, updates)


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _report(steps, b1, windows, points, ours, peers, per_table, all_rows, change, ours_runs, indexes, updates) -> str:
    first, last = (1, min(10, steps)), (max(1, steps - 10), steps)
    start_p, end_p = (points[1] if len(points) > 1 else points[0]), points[-1]
    lg = peers[0] if peers else None
    lines = [f"Per-step time, median of steps {first[0]}–{first[1]} and of steps {last[0]}–{last[1]} "
             f"(target: ours end ≤ 1.2× start; ours pooled over {ours_runs} runs, LG over one):", "",
             f"| system | steps {first[0]}–{first[1]} ms | steps {last[0]}–{last[1]} ms | end / start | start vs B1 p50 | "
             f"end vs B1 p50 | vs LG, start | vs LG, end |", "|---|---|---|---|---|---|---|---|"]
    for curve in [ours, *peers]:
        s, e = curve.median(*first), curve.median(*last)
        vs = f"{s / lg.median(*first):.2f}× | {e / lg.median(*last):.2f}×" if lg else "– | –"
        lines.append(f"| {curve.name} | {_fmt_ms(s)} | {_fmt_ms(e)} | **{e / s:.2f}×** | {s / b1.p50:.1f}× | "
                     f"{e / b1.p50:.1f}× | {vs} |")
    lines += ["", "The same steps split in two: the model call alone (pydantic-ai's `model_request` to the zero-latency "
                  "demo model, as each system makes it) and the rest of the step:", "",
              f"| system | model call {first[0]}–{first[1]} ms | {last[0]}–{last[1]} ms | end / start | rest of the step "
              f"{first[0]}–{first[1]} ms | {last[0]}–{last[1]} ms | end / start |", "|---|---|---|---|---|---|---|"]
    for curve in [ours, *peers]:
        cells = []
        for part in ("model", "rest"):
            s, e = curve.median(*first, part=part), curve.median(*last, part=part)
            cells += [_fmt_ms(s), _fmt_ms(e), f"**{e / s:.2f}×**"]
        lines.append(f"| {curve.name} | " + " | ".join(cells) + " |")

    state = {p: sum(change[p]) for p in points}

    def line(label: str, values: dict[int, float]) -> str:
        return (f"| {label} | {values[start_p]:,.0f} | {values[start_p] / state[start_p]:.1f}× | {values[end_p]:,.0f} | "
                f"{values[end_p] / state[end_p]:.1f}× |")

    ws, we = windows[start_p], windows[end_p]
    lines += ["", f"Bytes written per step (target: ≤ 2× the state change), at step {start_p} and step {end_p} "
                  f"(WAL: per step over steps {ws[0]}–{ws[1] - 1} and {we[0]}–{we[1] - 1}):", "",
              f"| bytes per step | step {start_p} | × state change | step {end_p} | × state change |", "|---|---|---|---|---|",
              line("state change: new messages + small state if changed (compact JSON)", state),
              line("ours: checkpoint row + new message rows (as stored)", ours.rows),
              line("ours: every row the step wrote (+ events, model call, tool invocation, run row version, spans)",
                   all_rows),
              line("ours: WAL", ours.wal)]
    for curve in peers:
        lines += [line(f"{curve.name}: checkpoints + blobs + writes rows (as stored)", curve.rows),
                  line(f"{curve.name}: the same rows uncompressed", curve.raw),
                  line(f"{curve.name}: WAL", curve.wal)]

    names = [c.name for c in peers]
    header = ("| step | ours ms | ours model call ms | " + "".join(f"{n} ms | {n} model call ms | " for n in names)
              + "ours rows B | ours all rows B | ours WAL B | " + "".join(f"{n} rows B | {n} WAL B | " for n in names)).rstrip()
    lines += ["", f"The curve: time = median of the {WINDOW} steps ending at the step (step 1: alone); rows = what that "
                  f"step wrote; WAL = per step over the same steps:", "", header, "|" + "---|" * (header.count("|") - 1)]
    for p in points:
        a, b = windows[p]
        cells = [str(p), _fmt_ms(ours.median(a, b - 1)), _fmt_ms(ours.median(a, b - 1, "model"))]
        for c in peers:
            cells += [_fmt_ms(c.median(a, b - 1)), _fmt_ms(c.median(a, b - 1, "model"))]
        cells += [f"{ours.rows[p]:,}", f"{all_rows[p]:,}", f"{ours.wal[p]:,.0f}"]
        for c in peers:
            cells += [f"{c.rows[p]:,}", f"{c.wal[p]:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")

    lines += ["", f"Ours, what step {start_p} and step {end_p} wrote, by table (rows, bytes as stored):", "",
              f"| table | step {start_p} rows | bytes | step {end_p} rows | bytes |", "|---|---|---|---|---|"]
    for name in ROW_BYTES:
        (r1, s1), (r2, s2) = per_table[start_p][name], per_table[end_p][name]
        lines.append(f"| {name} | {r1} | {s1:,} | {r2} | {s2:,} |")
    lines += ["", f"Indexes the step's rows update (agents_run: {updates[0]:,} updates in the probe run, "
                  f"{updates[1]:,} of them HOT, i.e. without index entries):", "",
              "| table | indexes | names |", "|---|---|---|"]
    lines += [f"| {table} | {count} | {names} |" for table, count, names in indexes]
    for curve in [ours, *peers[:1]]:
        if curve.records:
            lines += ["", f"{curve.name}: WAL per step over steps {we[0]}–{we[1] - 1} by record type (pg_waldump --stats=record, "
                          f"the largest; bytes include record headers):", "",
                      "| record type | records per step | bytes per step |", "|---|---|---|"]
            lines += [f"| {kind} | {n:.1f} | {size:,.0f} |" for kind, n, size in curve.records[:8]]

    model_growth = ", ".join(f"{c.name} {c.median(*last, part='model') / c.median(*first, part='model'):.1f}×"
                             for c in [ours, *peers])
    notes = (
        f"Ours: the demo `noop` looper, {steps} tool calls and the answer, stepped in this process by one `run_advance` "
        f"(RUN_TURN_SECONDS = 1 day for the call, so one turn takes every step: no broker hop), {ours_runs} timed runs "
        f"after a 20-step warm-up run, each after a 2 s pause (spans flushed) so that the last run's aftermath in "
        f"Postgres does not land on its first steps. One sample = the start of `_model_step` (the step: the model call through the "
        f"gateway, then one fenced transaction with the reply, the transactional `noop`, the checkpoint upsert, the new "
        f"messages, events, ModelCall and ToolInvocation rows and the next step's boundary) → the next one's start, so it "
        f"also holds the step span and run_advance's loop. LG/LG-msgs: bench/langgraph_peer.py's agent ⇄ tool graph (the "
        f"same model call, the same tool), PostgresSaver, `durability=\"sync\"`, one timed run of {steps} steps after a "
        f"20-step warm-up (LG-msgs alone takes minutes); sample = agent node start → next agent node start. Rows: "
        f"`pg_column_size` of each row a step "
        f"wrote, as stored (values over 2 kB, LangGraph's growing blobs, are compressed by TOAST; 'uncompressed' shows "
        f"what it serialized). LG's rows for a step = its two checkpoints (after the agent node, after the tool node), the "
        f"blobs they introduced (the whole `messages` list, again each time it changes) and the writes of the two tasks. "
        f"State change = the step's new conversation messages + our small state if the step changed it (a step that asks "
        f"for a call and runs it in its own transaction ends in the state it began in and writes no checkpoint), as "
        f"compact JSON. WAL: "
        f"`pg_current_wal_insert_lsn()` read at step starts, per step over the window: ours in a fourth, untimed run "
        f"(our spans flushed before each reading, so a window holds its own steps' spans), LG's in its timed run (one "
        f"SELECT on another connection at 9 of the 1,000 step starts). The bench Postgres "
        f"runs with fsync, synchronous_commit and full_page_writes off: no full-page images in this WAL (production "
        f"writes one per page first touched after each checkpoint). B1 p50 in this run: {b1.p50 * 1000:.3f} ms. "
        f"The model call alone grows with the conversation in every system here ({model_growth}): pydantic-ai's "
        f"`model_request` walks the whole message history on each call (the instructions lookup, the checks for retry, "
        f"settings-delta and instruction-state parts, the special-token pass), a floor for any runtime that hands it "
        f"the whole history (as a provider's API needs). The rest of our step, the runtime's own work, went "
        f"{ours.median(*last, part='rest') / ours.median(*first, part='rest'):.2f}× from steps "
        f"{first[0]}–{first[1]} to {last[0]}–{last[1]}."
    )
    return "\n".join(lines) + "\n\n" + notes
