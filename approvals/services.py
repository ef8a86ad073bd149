"""Approval writes. Decisions are a compare-and-set: exactly one wins."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalStatus
from console.services import audit_record


class DecisionRefused(Exception):
    """The decision cannot be taken; the message says why (and who decided first)."""


def approval_request_create(*, run, step: int, call, risk: int, rule: str) -> ApprovalRequest:
    from agents.events import emit

    approval, _ = ApprovalRequest.objects.get_or_create(
        run=run, step=step, call_id=call.call_id,
        defaults={"tenant": run.tenant, "tool": call.tool, "arguments": call.arguments, "reason": call.reason,
                  "risk": risk, "policy": rule},
    )
    emit(run, "approval.requested", {"approval_id": approval.id, "tool": call.tool, "risk": risk, "policy": rule})
    return approval


def approval_for_call(*, run, step: int, call_id: str) -> ApprovalRequest | None:
    return ApprovalRequest.objects.for_tenant(run.tenant).filter(run=run, step=step, call_id=call_id).select_related(
        "decided_by").first()


def approvals_cancel_for_run(*, run) -> int:
    return ApprovalRequest.objects.for_tenant(run.tenant).filter(run=run, status=ApprovalStatus.PENDING).update(
        status=ApprovalStatus.CANCELLED, decided_at=timezone.now())


def approval_decide(*, approval: ApprovalRequest, approve: bool, actor, note: str = "") -> ApprovalRequest:
    from agents.events import emit
    from agents.services import run_continue_after_decision, run_locked

    status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    note = (note or "").strip()[:2000]
    with transaction.atomic():
        won = ApprovalRequest.objects.filter(pk=approval.pk, status=ApprovalStatus.PENDING).update(
            status=status, decided_by=actor, decided_at=timezone.now(), decision_note=note) == 1
        approval.refresh_from_db()
        if not won:
            who = approval.decided_by.username if approval.decided_by else "the system"
            when = approval.decided_at.strftime("%Y-%m-%d %H:%M:%S UTC") if approval.decided_at else ""
            raise DecisionRefused(f"Already {approval.status} by {who} at {when}.")
        with run_locked(tenant=approval.tenant_id, run_id=approval.run_id) as run:
            emit(run, "approval.decided", {"approval_id": approval.id, "decision": status.value,
                                           "by": actor.username, "note": note})
            audit_record(tenant=approval.tenant, actor=actor, verb=f"approval.{status.value}",
                         target=f"run {run.id}: {approval.tool}", data={"approval_id": approval.id, "note": note})
            run_continue_after_decision(run=run, tool=approval.tool, approved=approve, actor=actor)
    return approval
