"""People's run starts and controls from the console, each with its audit record in the same transaction
(the runtime's services do the work; the audit log says who did what, in words)."""

from __future__ import annotations

from django.db import transaction

from agents import services
from agents.models import Agent, Run
from console.services import audit_record


def _target(run: Run) -> str:
    return f"run #{run.number} ({run.agent.name})"


def run_start_audited(*, tenant, agent: Agent, goal: str, actor, version: int | None = None) -> Run:
    with transaction.atomic():
        run = services.run_start(tenant=tenant, agent=agent, goal=goal, requested_by=actor, version=version)
        audit_record(tenant=tenant, actor=actor, verb="run.started", target=_target(run),
                     data={"goal": run.goal[:200] + ("…" if len(run.goal) > 200 else ""),
                           "agent_version": run.agent_version})
    return run


VERBS = {"pause": "run.paused", "resume": "run.resumed", "cancel": "run.cancelled"}


def run_control_take(*, run: Run, action: str, actor, text: str = "", reason: str = "") -> Run:
    """Pause, resume, cancel (with an optional reason) or add an instruction; the first three audited."""
    if action == "instruct":
        return services.run_add_instruction(run=run, actor=actor, text=text)
    with transaction.atomic():
        if action == "cancel":
            changed = services.run_cancel(run=run, actor=actor, reason=reason)
        else:
            changed = {"pause": services.run_pause, "resume": services.run_resume}[action](run=run, actor=actor)
        data = {"status before": run.get_status_display().lower()}
        if action == "cancel":
            data["reason"] = reason.strip()[:500] or "(none given)"
        if changed.cancel_requested or changed.pause_requested:
            data["when"] = "at the end of the current step"
        audit_record(tenant=run.tenant_id, actor=actor, verb=VERBS[action], target=_target(run), data=data)
    return changed
