"""Proctor's benchmarks: `python -m bench` runs them all, `python -m bench NAME` one.

See docs/BENCHMARKS.md (shared): every figure is a ratio to a baseline measured in the
same run, with raw p50/p99 alongside. The latest output is kept in bench/RESULTS.md.
"""
