"""LangGraph + its Postgres checkpointer running a no-op agent loop: P1's comparison point.

The graph: one node ``step`` that bumps a counter and appends an entry to a list kept at
about ``state_bytes`` (the oldest entry drops out), and a conditional edge back to
``step`` until ``steps`` are done. ``PostgresSaver`` checkpoints into the same Postgres.

Per-step samples come from timestamps taken inside the node: the time from one step's
start to the next step's start (for the last step: to ``invoke`` returning), so each
sample covers the node, the checkpoint write and LangGraph's scheduling of the next step.

``langgraph_sync(ctx)`` is what P1 compares with: measured once per bench run, shared with this section.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal, TypedDict

from bench.harness import Context, Row, summary, table

ENTRY_BYTES = 64


class NoopState(TypedDict):
    step: int
    target: int
    items: list[str]


def _initial_state(steps: int, state_bytes: int) -> NoopState:
    count = max(1, state_bytes // ENTRY_BYTES)
    return {"step": 0, "target": steps, "items": [f"{i:08d}".ljust(ENTRY_BYTES, "i") for i in range(count)]}


def build_graph(checkpointer, stamps: list[float]):
    """Compile the no-op loop; the node appends ``perf_counter()`` to ``stamps`` on entry."""
    from langgraph.graph import END, START, StateGraph

    clock = time.perf_counter

    def step(state: NoopState) -> dict:
        stamps.append(clock())
        n = state["step"] + 1
        return {"step": n, "items": [*state["items"][1:], f"{n:08d}".ljust(ENTRY_BYTES, "s")]}

    def route(state: NoopState) -> Literal["step", "__end__"]:
        return "step" if state["step"] < state["target"] else END

    graph = StateGraph(NoopState)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", route)
    return graph.compile(checkpointer=checkpointer)


def _runs(database_url: str, steps: int, state_bytes: int, runs: int, warmup_runs: int,
          durability: str) -> tuple[list[float], list[float]]:
    """(per-step samples, per-run wall/steps samples) over ``runs`` timed runs."""
    from langgraph.checkpoint.postgres import PostgresSaver

    stamps: list[float] = []
    step_samples: list[float] = []
    run_samples: list[float] = []
    # from_conn_string opens one psycopg connection (autocommit, dict rows) and closes it on exit.
    with PostgresSaver.from_conn_string(database_url) as saver:
        saver.setup()
        app = build_graph(saver, stamps)
        for i in range(warmup_runs + runs):
            stamps.clear()
            config = {"configurable": {"thread_id": f"bench-noop-{uuid.uuid4()}"}, "recursion_limit": 2 * steps + 10}
            start = time.perf_counter()
            final = app.invoke(_initial_state(steps, state_bytes), config, durability=durability)
            end = time.perf_counter()
            if final["step"] != steps or len(stamps) != steps:
                raise RuntimeError(f"LangGraph no-op loop ran {len(stamps)} steps, expected {steps}")
            if i < warmup_runs:
                continue
            marks = [*stamps, end]
            step_samples.extend(b - a for a, b in zip(marks, marks[1:], strict=False))
            run_samples.append((end - start) / steps)
    return step_samples, run_samples


def langgraph_sync(ctx: Context, steps: int = 50, state_bytes: int = 1024, runs: int = 40):
    """(per-step seconds, per-run wall / steps) of LangGraph's no-op loop with PostgresSaver, after 3
    warm-up runs; once per bench run. ``durability="sync"`` makes LangGraph persist each checkpoint
    before the next step starts — like-for-like with a runtime that checkpoints every step durably.
    LangGraph's own default is ``"async"`` (the write overlaps the next step)."""
    def measure():
        print(f"  LangGraph no-op loop, durability=sync: {runs} runs × {steps} steps ...", flush=True)
        return _runs(ctx.database_url, steps, state_bytes, runs, 3, "sync")

    return ctx.once(f"langgraph sync {steps} {state_bytes} {runs}", measure)


def run(ctx: Context, steps: int = 50, state_bytes: int = 1024, runs: int = 40) -> str:
    from importlib.metadata import version

    b1 = ctx.baseline("B1")
    sync_steps, sync_runs = langgraph_sync(ctx, steps, state_bytes, runs)
    print(f"  LangGraph no-op loop, durability=async: {runs} runs × {steps} steps ...", flush=True)
    _, async_runs = _runs(ctx.database_url, steps, state_bytes, runs, 3, "async")
    rows = [
        Row("LangGraph per step (durability=sync)", summary(sync_steps), "B1", b1, note="headline; P1 compares to this"),
        Row("LangGraph run wall / steps (sync)", summary(sync_runs), "B1", b1, note="one sample per run"),
        Row("LangGraph run wall / steps (async, its default)", summary(async_runs), "B1", b1, note="one sample per run"),
        Row("B1 (same run)", b1, "B1", b1),
    ]
    notes = (
        f"langgraph {version('langgraph')}, langgraph-checkpoint-postgres {version('langgraph-checkpoint-postgres')}: "
        f"StateGraph with one node looping {steps} steps, state ≈ {state_bytes} B (a list of {ENTRY_BYTES}-byte "
        f"entries, one appended and the oldest dropped per step), PostgresSaver (one psycopg connection, "
        f"`.setup()` run) on the embedded Postgres, unique thread_id per run, {runs} timed runs after 3 warm-up "
        f"runs. Per-step sample = node start → next node start (last step: → `invoke` returns). "
        f"`durability=sync` persists each checkpoint before the next step starts (like-for-like with P1). "
        f"LangGraph's default `async` queues the writes behind the steps and drains them when the run ends, so "
        f"its per-step timestamps mislead (fast steps, one huge last step); only its per-run wall/steps is shown. "
        f"P1 compares with the same measurement (`langgraph_sync`, taken once per bench run)."
    )
    return table(rows) + "\n\n" + notes
