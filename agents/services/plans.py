"""People edit a paused run's plan."""

from __future__ import annotations

from django.utils import timezone

from agents import engine
from agents.events import emit
from agents.models import PlanStep, Run, RunStatus
from agents.services.control import run_locked
from agents.services.transitions import RunError, who
from console.services import audit_record


def plan_editable_steps(plan: list[PlanStep]) -> tuple[list[PlanStep], list[PlanStep]]:
    """A plan splits into the steps already done (kept as they are) and the rest, which people may edit."""
    done = [step for step in plan if step.status == "done"]
    return done, [step for step in plan if step.status != "done"]


def run_plan_edit(*, run: Run, actor, steps: list[str]) -> Run:
    """A person rewrites, adds, deletes or reorders the steps of a paused run's plan that are not done
    yet. The agent is told the new plan at its next step; the edit is an event with author and diff."""
    steps = engine.plan_steps_cleaned(steps)
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.status != RunStatus.PAUSED:
            raise RunError(f"The run is {locked.get_status_display().lower()}; pause it to edit its plan"
                           + (" (a plan waiting for approval is edited from its approval)."
                              if locked.status == RunStatus.WAITING_FOR_HUMAN else "."))
        plan = list(PlanStep.objects.filter(run=locked))
        if any(step.status == "proposed" for step in plan):
            raise RunError("This plan waits for approval: edit it in the approval, then approve it.")
        done, _ = plan_editable_steps(plan)
        before = [step.title for step in plan]
        after = [step.title for step in done] + steps
        if problem := ("" if steps else "Keep at least one step that is not done.") or engine.plan_problem(after):
            raise RunError(problem)
        if after == before:
            raise RunError("The plan is unchanged.")
        # Numbered again from 1: steps done are not always the first ones (the agent may go back in its plan).
        PlanStep.objects.filter(run=locked).delete()
        PlanStep.objects.bulk_create([PlanStep(run=locked, position=i, title=step.title, status="done")
                                      for i, step in enumerate(done, start=1)]
                                     + [PlanStep(run=locked, position=len(done) + i, title=t)
                                        for i, t in enumerate(steps, start=1)])
        author = who(actor)
        locked.inbox = [*locked.inbox, {"text": engine.plan_text(after, by=author), "by": author,
                                        "at": timezone.now().isoformat(), "kind": "plan"}]
        emit(locked, "plan.edited", {"by": author, "before": before, "after": after,
                                     "diff": engine.plan_diff(before, after)})
        audit_record(tenant=locked.tenant_id, actor=actor, verb="run.plan_edited", target=f"run {locked.pk}",
                     data={"before": before, "after": after})
    return locked
