"""What the runtime's services share: refusals, status changes and the lease, the run's checkpoint."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from agents import engine
from agents.events import emit
from agents.hooks import StepInfo, review, status_changed
from agents.models import RUNNABLE, TERMINAL, Checkpoint, Run, RunStatus
from agents.run_store import checkpoint_set
from agents.tracing import record_run_span


class RunError(Exception):
    """A user-facing refusal (bad input, wrong state); the message says what to do."""


class LeaseLost(Exception):
    """Another worker holds the run now: drop this step's work."""


def who(actor) -> str:
    return getattr(actor, "username", None) or "api"


def enqueue_on_commit(run_id: int) -> None:
    from agents.tasks import run_step

    transaction.on_commit(lambda: run_step.delay(run_id))


def step_info(run: Run, step: int, *, latest_messages: dict[str, dict] | None = None) -> StepInfo:
    """What the step's hooks are told about the step."""
    return StepInfo(tenant_id=run.tenant_id, run_id=run.pk, agent_id=run.agent_id, agent_version=run.agent_version,
                    requested_by_id=run.requested_by_id, step=step, goal=run.goal, trace_id=run.trace_id,
                    config_version=run.tenant.config_version if Run.tenant.is_cached(run) else None,
                    latest_messages=latest_messages)


def state_save(run: Run, state: engine.RunState) -> None:
    """The run's small state as this step's checkpoint (written with the run by run_write, an upsert by
    step: a step may save it after the reply and again after the tool result)."""
    checkpoint_set(run, Checkpoint(run=run, step=run.step, state=state.to_json()))


def set_status(run: Run, new: str, **payload) -> None:
    """The run's new status, as an event. A run that is not runnable (waiting for a person, paused,
    ended) is nobody's to step: its lease is released with the change."""
    engine.check_transition(run.status, new)
    if new not in RUNNABLE:
        release(run)
    if run.status == new:
        return
    emit(run, "status", {"from": run.status, "to": new, **payload})
    old, run.status = run.status, new
    if new in TERMINAL:
        run.finished_at = timezone.now()
        run.next_action = ""
        _record_run_span_on_commit(run)
    status_changed(run, old, new)


def _record_run_span_on_commit(run: Run) -> None:
    span = {"trace_id": run.trace_id, "run_id": run.pk, "agent": run.agent.name, "status": run.status,
            "started": run.created_at, "ended": run.finished_at, "agent_id": run.agent_id,
            "agent_version": run.agent_version}
    transaction.on_commit(lambda: record_run_span(**span))


def release(run: Run) -> None:
    run.lease_owner = ""
    run.lease_expires_at = None


def fail(run: Run, reason: str) -> None:
    run.terminal_reason = reason[:300]
    run.last_action = reason[:300]
    set_status(run, RunStatus.FAILED, reason=reason)


def cancel_now(run: Run, by: str = "") -> None:
    review().cancel_open(run=run)
    by = by or who(run.control_by)
    run.terminal_reason = f"cancelled by {by}"
    run.cancel_requested = False
    set_status(run, RunStatus.CANCELLED, by=by)
