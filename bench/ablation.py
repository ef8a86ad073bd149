"""Loaded by P1's ablation workers only (``celery worker --include bench.ablation``): takes the plug-ins
named in ``BENCH_PLUGINS_OFF`` (comma-separated keys of PLUGINS) out of the runtime's hooks when the
worker starts, so the same code runs with and without each plug-in's per-step work and production code
needs no switch of its own. Celery imports included modules after Django is set up (apps ready, hooks
registered) and before a prefork worker forks its children, so every child runs without them.
"""

from __future__ import annotations

import contextlib
import os

from agents.hooks import hooks

# key → (hook list attribute of agents.hooks.Hooks, "module.function") for each registration it removes
PLUGINS: dict[str, tuple[tuple[str, str], ...]] = {
    "memory": (("context", "memory.context.memory_context"), ("decision", "memory.context.memory_uses")),
    "costs.ledger": (("usage", "costs.ledger.usage_to_ledger"),),
    "costs.budget": (("gates", "costs.budgets.budget_gate"),),
    "traces.decisions": (("decision", "traces.services.decision_recorded"),),
}


def _name(fn) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__name__', '')}"


def plugins_off(keys: list[str]) -> list[str]:
    """Remove the named plug-ins' registrations; returns what was removed (every key must remove something)."""
    removed = []
    for key in keys:
        if key not in PLUGINS:
            raise SystemExit(f"BENCH_PLUGINS_OFF: unknown plug-in {key!r}; known: {', '.join(PLUGINS)}")
        for attribute, name in PLUGINS[key]:
            registered = getattr(hooks, attribute)
            found = [fn for fn in registered if _name(fn) == name]
            if not found:
                raise SystemExit(f"BENCH_PLUGINS_OFF: {name} is not registered as a {attribute} hook")
            for fn in found:
                registered.remove(fn)
            removed.append(name)
    return removed


@contextlib.contextmanager
def plugins_removed(keys: list[str]):
    """The named plug-ins out of the hooks of this process for the block, then back where they were (the
    bench's in-process paired measurement)."""
    kept = {attribute: list(getattr(hooks, attribute)) for key in keys for attribute, _ in PLUGINS[key]}
    plugins_off(keys)
    try:
        yield
    finally:
        for attribute, registered in kept.items():
            getattr(hooks, attribute)[:] = registered


plugins_off([key for key in os.environ.get("BENCH_PLUGINS_OFF", "").split(",") if key])
