"""``python -m bench`` runs every benchmark; ``python -m bench NAME [NAME ...]`` runs those.
``--rows N`` sets the ledger rows of p6costs (default 1,000,000; its results get a section of their own).
p1ablation reads P1_ABLATION_ROUNDS (3), P1_ABLATION_RUNS (6), P1_ABLATION_ONLY (plug-in keys of
bench/ablation.py: only those variants and "all plug-ins", in a section of their own) and P1_ABLATION_PAIRS
(0; N: each single plug-in variant also measured in process, N pairs of runs with and without it).
p1ledger (the ledger's share of P1's step, its parts measured alone) reads P1_LEDGER_SAMPLES (3000) and
P1_LEDGER_PAIRS (20).

One embedded stack (Postgres 17 + pgvector + Redis, throwaway) is started for the whole invocation
and stopped at exit. Each benchmark prints its table and replaces its section of
bench/RESULTS.md.

To add a benchmark, add one line to REGISTRY: ``"name": callable(ctx) -> markdown``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from bench import (
    agent_loop,
    approval_queue,
    baselines,
    click_to_resume,
    cost_dashboard,
    fanout,
    langgraph_peer,
    ledger_share,
    long_runs,
    memory_retrieval,
    trace_timeline,
)
from bench.harness import RESULTS, Context, machine_note, stack, write_results

REGISTRY = {
    "baselines": baselines.run,
    "p1": agent_loop.run_p1,
    "p1ablation": agent_loop.run_p1_ablation,
    "p1ledger": ledger_share.run,
    "p2": agent_loop.run_p2,
    "queue": approval_queue.run,
    "p6costs": cost_dashboard.run,
    "p3": click_to_resume.run,
    "lg": langgraph_peer.run,
    "p8": long_runs.run,
    "p4": fanout.run,
    "p6t": trace_timeline.run,
    "p7": memory_retrieval.run,
    "p7m": memory_retrieval.run_1m,
}


def _ablation_suffix(name: str) -> str:
    """p1ablation run for some plug-ins only (P1_ABLATION_ONLY) gets a section of its own, beside the full table."""
    only = os.environ.get("P1_ABLATION_ONLY", "") if name == "p1ablation" else ""
    return f" P1_ABLATION_ONLY={only}" if only else ""


def main(argv: list[str]) -> int:
    if any(a in {"-h", "--help"} for a in argv):
        print(__doc__.strip())
        print("\nbenchmarks:", ", ".join(REGISTRY))
        return 0
    suffix = ""
    if "--rows" in argv:
        at = argv.index("--rows")
        try:
            rows = int(argv[at + 1].replace("_", ""))
        except (IndexError, ValueError):
            print("--rows takes a whole number of ledger rows, e.g. --rows 10000000", file=sys.stderr)
            return 2
        if rows < 1:
            print("--rows must be at least 1", file=sys.stderr)
            return 2
        os.environ["P6_LEDGER_ROWS"] = str(rows)
        argv = argv[:at] + argv[at + 2:]
        suffix = "" if rows == 1_000_000 else f" --rows {rows}"
    names = argv or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    print("Starting the embedded stack (Postgres + Redis) ...", flush=True)
    with stack() as env:
        ctx = Context(env)
        for name in names:
            print(f"\n== {name} ==", flush=True)
            t0 = time.monotonic()
            section = REGISTRY[name](ctx)
            section = f"{section}\n\n{machine_note()} Took {time.monotonic() - t0:.0f} s."
            print(section, flush=True)
            write_results(name + (suffix if name == "p6costs" else "") + _ablation_suffix(name), section)
    print(f"\nUpdated {RESULTS} in {time.monotonic() - started:.0f} s; stack stopped.")
    return 0


if __name__ == "__main__":
    # A SIGTERM unwinds like Ctrl-C, so the stack and the Bh server are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("\ninterrupted; the stack was stopped and nothing was written for the unfinished benchmark.",
              file=sys.stderr)
        sys.exit(130)
