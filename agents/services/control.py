"""People's changes to a run (and a decision's outcome, for approvals): each under the run's row
lock (``run_locked``), written with ``run_write`` like the step's own transactions (with the COMMIT, when whole);
an instruction, which needs no decision between its read and its write, in one statement of its own."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from agents.events import emit
from agents.hooks import review
from agents.models import TERMINAL, Run, RunStatus
from agents.run_store import run_instruction_add, run_lock_in_tenant, run_write_and_commit
from agents.services.runs import MAX_INSTRUCTION_CHARS
from agents.services.transitions import RunError, cancel_now, enqueue_on_commit, set_status, who


def _lease_held(run: Run) -> bool:
    # A worker that died keeps lease_owner until the sweeper; only an unexpired lease means one is mid-step.
    return bool(run.lease_owner) and run.lease_expires_at is not None and run.lease_expires_at > timezone.now()


@contextmanager
def run_locked(*, tenant, run_id: int, savepoint: bool = True):
    """A transaction holding the run's row lock, for changes made by people (and by approvals).
    ``tenant``: the tenant or its id; a run of another tenant is Run.DoesNotExist, like a missing one.
    ``savepoint=False`` inside a caller's transaction that fails as a whole if this does (a decision)."""
    with transaction.atomic(savepoint=savepoint):
        locked = run_lock_in_tenant(run_id=run_id, tenant_id=getattr(tenant, "pk", tenant))
        if locked is None:
            raise Run.DoesNotExist(f"no run {run_id} in this tenant")
        yield locked
        run_write_and_commit(locked)  # with the COMMIT in one round trip when this is the whole transaction


NEXT_AFTER_DECISION = {  # kind → (approved, not approved)
    "tool_call": ("Run {tool}", "Tell the agent the call was rejected"),
    "plan": ("Follow the approved plan", "Tell the agent the plan was rejected"),
    "question": ("Read the answer", "Tell the agent nobody answered"),
    "budget": ("Go on with the extended budget", "End the run: its budget is used up"),
}


def run_continue_after_decision(*, run: Run, tool: str, approved: bool, actor, kind: str = "tool_call") -> None:
    """With the row locked by run_locked: a run that waited for this decision goes back to the queue.
    A paused run stays paused; resuming it picks the decision up."""
    if run.status != RunStatus.WAITING_FOR_HUMAN:
        return
    set_status(run, RunStatus.QUEUED, by=who(actor))
    run.next_action = NEXT_AFTER_DECISION[kind][0 if approved else 1].format(tool=tool)
    enqueue_on_commit(run.pk)


def run_cancel(*, run: Run, actor, by: str = "", reason: str = "") -> Run:
    """``by`` names who cancels when it is not a person (e.g. "policy (approval expired)"); ``reason``: why, in their words."""
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.is_terminal:
            raise RunError(f"The run is already {locked.status}.")
        if reason.strip():
            emit(locked, "control.cancel_reason", {"by": by or who(actor), "reason": reason.strip()[:500]})
        locked.control_by, locked.control_at = actor, timezone.now()
        if locked.status in (RunStatus.WAITING_FOR_HUMAN, RunStatus.PAUSED, RunStatus.QUEUED, RunStatus.CREATED) \
                and not _lease_held(locked):
            cancel_now(locked, by=by)
        else:  # a worker is mid-step: it stops at the step boundary
            locked.cancel_requested = True
            emit(locked, "control.cancel_requested", {"by": who(actor)})
    return locked


def run_pause(*, run: Run, actor) -> Run:
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.is_terminal or locked.status == RunStatus.PAUSED:
            raise RunError(f"The run is {locked.status}; it cannot be paused.")
        locked.control_by, locked.control_at = actor, timezone.now()
        if locked.status in (RunStatus.QUEUED, RunStatus.WAITING_FOR_HUMAN) and not _lease_held(locked):
            set_status(locked, RunStatus.PAUSED, by=who(actor))
        else:
            locked.pause_requested = True
            emit(locked, "control.pause_requested", {"by": who(actor)})
    return locked


def run_resume(*, run: Run, actor) -> Run:
    with run_locked(tenant=run.tenant_id, run_id=run.pk) as locked:
        if locked.pause_requested:
            locked.pause_requested = False
            emit(locked, "control.resumed", {"by": who(actor)})
            return locked
        if locked.status != RunStatus.PAUSED:
            raise RunError(f"The run is {locked.status}, not paused.")
        locked.control_by, locked.control_at = actor, timezone.now()
        set_status(locked, RunStatus.QUEUED, by=who(actor))
        if review().waits(run=locked):  # its pending call, plan or question is still nobody's decision
            set_status(locked, RunStatus.WAITING_FOR_HUMAN)
            return locked
        enqueue_on_commit(locked.pk)
    return locked


def run_add_instruction(*, run: Run, actor, text: str) -> Run:
    """The instruction joins the run's inbox (the next step gives it to the model) with its ``instruction.added``
    event, in one statement and its commit (``run_store.run_instruction_add``): nothing needs deciding between
    reading the run and writing it but "in this tenant, not ended", which the statement checks itself. The run
    as written; Run.DoesNotExist outside the tenant; RunError once it has ended."""
    text = (text or "").strip()
    if not text:
        raise RunError("Write the instruction to add.")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise RunError(f"Keep the instruction under {MAX_INSTRUCTION_CHARS} characters.")
    at = timezone.now()
    item = {"text": text, "by": who(actor), "at": at.isoformat()}
    added = run_instruction_add(run_id=run.pk, tenant_id=run.tenant_id, item=item, event_type="instruction.added",
                                at=at, terminal=TERMINAL)
    if added is not None:
        return added
    status = Run.objects.for_tenant(run.tenant_id).filter(pk=run.pk).values_list("status", flat=True).first()
    if status is None:  # only now, on the way out, do we read why
        raise Run.DoesNotExist(f"no run {run.pk} in this tenant")
    raise RunError(f"The run is already {status}.")
