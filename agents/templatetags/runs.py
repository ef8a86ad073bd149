"""What the run page shows of a run's state: the controls that apply, the time it has taken."""

from __future__ import annotations

from django import template
from django.utils import timezone

from agents.controls import run_actions as actions_for

register = template.Library()


@register.filter
def run_actions(run) -> set[str]:
    return actions_for(run)


def elapsed_words(seconds: float) -> str:
    """1 s, 2 min 05 s, 3 h 04 min: as static/js/live.js ticks it on a live run."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@register.filter
def elapsed(run) -> str:
    if not run.started_at:
        return ""
    return elapsed_words(((run.finished_at or timezone.now()) - run.started_at).total_seconds())
