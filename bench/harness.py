"""Shared machinery for the benchmarks: the embedded stack, timing, tables, RESULTS.md.

A benchmark is a callable ``run(ctx: Context) -> str`` returning its markdown section
(tables plus notes). ``Context`` carries the stack's URLs and memoises baselines, so
``python -m bench`` measures B1 once and every benchmark in that run compares to it,
while ``python -m bench NAME`` measures what NAME needs on its own.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"


# --------------------------------------------------------------------------- stack


@contextlib.contextmanager
def stack() -> Iterator[dict[str, str]]:
    """A throwaway embedded Postgres 17 + Redis, stopped and deleted on exit.

    DATABASE_URL/REDIS_URL are removed from the environment first, otherwise DevStack
    would reuse external servers; they are restored afterwards.
    """
    from console.devstack import VAR, DevStack

    saved = {key: os.environ.pop(key) for key in ("DATABASE_URL", "REDIS_URL") if key in os.environ}
    try:
        with DevStack(VAR / "bench", throwaway=True) as env:
            yield env
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def asgi_server(app: str, *, env: dict[str, str], log: Path | None = None, options: tuple[str, ...] = ()) -> Iterator[int]:
    """uvicorn serving ``app`` ("module:attribute") in a subprocess on a free loopback port; yields the
    port once it listens, and always stops the server (SIGTERM, then SIGKILL)."""
    import subprocess
    import sys

    from console.devstack import ROOT, free_port, wait_for_port

    port = free_port()
    output = log.open("w") if log else None
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                             "--no-access-log", "--log-level", "warning", "--lifespan", "off", *options],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output,
                            stderr=subprocess.STDOUT if output else None, start_new_session=True)
    try:
        wait_for_port(port, timeout=30)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if output:
            output.close()


# --------------------------------------------------------------------------- timing


def measure(fn: Callable[[], object], n: int, warmup: int = 0) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``n`` times; return each call's seconds.

    Garbage is collected once before the timed calls; collections during them are left in
    (they are part of the real cost, and P1/LangGraph pay them too).
    """
    for _ in range(warmup):
        fn()
    gc.collect()
    samples: list[float] = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        fn()
        samples.append(clock() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p99: float
    mean: float

    @property
    def p50_ms(self) -> float:
        return self.p50 * 1000

    @property
    def p99_ms(self) -> float:
        return self.p99 * 1000

    @property
    def mean_ms(self) -> float:
        return self.mean * 1000


def summary(samples: list[float]) -> Summary:
    return Summary(
        n=len(samples),
        p50=percentile(samples, 50),
        p99=percentile(samples, 99),
        mean=statistics.fmean(samples) if samples else math.nan,
    )


def summed(*parts: Summary) -> Summary:
    """Parts of one path measured one at a time, added up: their p50s, p99s and means (a floor, or a
    baseline made of two, such as Bh + B2)."""
    return Summary(n=min(part.n for part in parts), p50=sum(part.p50 for part in parts),
                   p99=sum(part.p99 for part in parts), mean=sum(part.mean for part in parts))


# --------------------------------------------------------------------------- context


@dataclass
class Context:
    """The running stack plus baselines measured (once) in this run."""

    env: dict[str, str]
    _baselines: dict[str, Summary] = field(default_factory=dict)
    _shared: dict[str, object] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    def baseline(self, name: str) -> Summary:
        """The named baseline (B1, B2, Bh, ...) from this run, measuring it on first use."""
        if name not in self._baselines:
            from bench import baselines

            print(f"  measuring baseline {name} ...", flush=True)
            self._baselines[name] = summary(baselines.BASELINES[name](self))
        return self._baselines[name]

    def once(self, name: str, measure: Callable[[], object]):
        """A measurement two benchmarks of this run both report (LangGraph's loop): taken once, shared."""
        if name not in self._shared:
            self._shared[name] = measure()
        return self._shared[name]


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Row:
    """One line of a result table: a measurement and the baseline it is divided by."""

    name: str
    stats: Summary
    ref_name: str
    ref: Summary
    note: str = ""

    def cells(self) -> list[str]:
        return [
            self.name,
            f"{self.stats.p50 / self.ref.p50:.2f}× {self.ref_name}",
            f"{self.stats.p99 / self.ref.p99:.2f}× {self.ref_name}",
            f"{self.stats.p50_ms:.3f}",
            f"{self.stats.p99_ms:.3f}",
            f"{self.stats.mean_ms:.3f}",
            str(self.stats.n),
            self.note,
        ]


HEADERS = ["measurement", "p50 ratio", "p99 ratio", "p50 ms", "p99 ms", "mean ms", "samples", "note"]


def table(rows: list[Row]) -> str:
    """A markdown table: ratios first, raw milliseconds for context."""
    body = [row.cells() for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(HEADERS)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    return "\n".join(out)


# --------------------------------------------------------------------------- machine note + RESULTS.md


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for text_line in Path("/proc/cpuinfo").read_text().splitlines():
            if text_line.lower().startswith("model name"):
                return text_line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_note() -> str:
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Machine: nproc={os.cpu_count()}, CPU: {cpu_model()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; run {now}."
    )


_HEADER = """# Benchmark results

Latest output of `python -m bench` (`make bench`); each section is replaced when its
benchmark reruns. Every figure is a ratio to a baseline measured in the same run on the
same machine; raw milliseconds are for context only (shared, noisy machines).
"""


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def write_results(name: str, section: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section for benchmark ``name`` in RESULTS.md; keep the rest."""
    start, end = _markers(name)
    block = f"{start}\n## {name}\n\n{section.strip()}\n{end}"
    text = path.read_text() if path.exists() else _HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n")
