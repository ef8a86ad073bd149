"""Approvals over the API. A token acts as the person who created it, with their current role."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import Field, Router, Schema

from approvals.models import ApprovalRequest
from approvals.selectors import approval_get, approval_list
from approvals.services import approval_assign, approval_decision_take
from console.access import token_access
from console.api_auth import token_scopes
from console.api_errors import Error, errors

# Reading the queue is reading runs; deciding and assigning need approvals:write (and the reviewer role, below).
router = Router(tags=["approvals"], auth=token_scopes(read="runs:read", write="approvals:write"))


class DecisionOut(Schema):
    actor: str
    verdict: str
    arguments: dict
    note: str
    at: datetime

    @staticmethod
    def resolve_actor(decision) -> str:
        return decision.actor.username


class ApprovalOut(Schema):
    id: int
    run: int = Field(description="The run's number in the tenant (GET /runs/{number})")
    kind: str
    tool: str
    arguments: dict
    approved_arguments: dict | None
    reason: str
    risk: int
    policy: str
    status: str
    required_approvals: int
    due_at: datetime | None
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str
    answer: str = Field(description="A question's answer")
    assignee: str | None
    tool_invocation_id: int | None
    created_at: datetime
    decisions: list[DecisionOut]

    @staticmethod
    def resolve_run(approval) -> int:
        return approval.run.number

    @staticmethod
    def resolve_decided_by(approval) -> str | None:
        return approval.decided_by.username if approval.decided_by else None

    @staticmethod
    def resolve_assignee(approval) -> str | None:
        return approval.assignee.username if approval.assignee else None

    @staticmethod
    def resolve_decisions(approval) -> list:
        return list(approval.decisions.all())


class DecisionIn(Schema):
    decision: Literal["approve", "reject", "edit", "respond"]
    note: str = Field(default="", max_length=2000)
    arguments: dict | None = Field(default=None, description="For edit: the arguments to run instead; for a plan, "
                                                             "{\"steps\": [...]}; for a budget extension, "
                                                             "{\"extension_usd\": \"0.50\", \"extension_tokens\": 1000}")
    answer: str = Field(default="", max_length=5000, description="For respond: the answer to the agent's question")
    client_key: str = Field(default="", max_length=100, description="Repeat a submit with the same key: one decision")


class AssigneeIn(Schema):
    assignee: str | None = Field(description="Username of a reviewer or admin of the tenant; null for nobody")


def _approval(request, approval_id: int, *, detail: bool = True) -> ApprovalRequest:
    approval = approval_get(tenant=request.tenant, approval_id=approval_id, detail=detail)
    if approval is None:
        raise Http404
    return approval


def _reviewer(request):
    """The token's person, if their current role in this tenant opens approvals (reviewer, admin)."""
    try:
        membership = token_access(request, section="approvals")
    except (Http404, PermissionDenied):  # the token's person left the tenant, or cannot decide
        raise PermissionDenied("Approvals need a token made by a reviewer or admin of this tenant.") from None
    return membership.user, membership


@router.get("/approvals", response={200: list[ApprovalOut], **errors(403)},
            summary="Approval requests, open ones first by default")
def list_approvals(request, status: str = "open", tool: str = "", agent: str = "", min_risk: int = 0,
                   sort: Literal["newest", "oldest", "risk", "due"] = "newest", limit: int = 50,
                   assigned: Literal["", "me"] = ""):
    """``assigned=me``: assigned to the token's person, or escalated to their role."""
    _, membership = _reviewer(request)
    return approval_list(tenant=request.tenant, status=status[:16], tool=tool[:100], agent=agent[:60],
                         min_risk=max(0, min_risk), sort=sort, limit=max(1, min(limit, 200)), with_decisions=True,
                         mine=assigned == "me", viewer=membership)


@router.get("/approvals/{approval_id}", response={200: ApprovalOut, **errors(403, 404)})
def get_approval(request, approval_id: int):
    approval = _approval(request, approval_id)  # another tenant's request is 404 before any 403
    _reviewer(request)
    return approval


@router.put("/approvals/{approval_id}/assignee", response={200: ApprovalOut, **errors(403, 404, 409)},
            summary="Ask one reviewer or admin to decide (null: nobody in particular)")
def assign(request, approval_id: int, body: AssigneeIn):
    approval = _approval(request, approval_id, detail=False)
    person, _ = _reviewer(request)
    approval_assign(approval=approval, assignee=body.assignee, actor=person)
    return _approval(request, approval_id)


@router.post("/approvals/{approval_id}/decisions",
             response={200: ApprovalOut, 202: Error, **errors(403, 404, 409)},
             summary="Approve, reject, edit and approve, or answer a question (409 when already decided; 202 "
                     "needs_more_approvals when the edit needs more reviewers than the request did)")
def decide(request, approval_id: int, body: DecisionIn):
    approval = _approval(request, approval_id, detail=False)
    person, _ = _reviewer(request)
    approval_decision_take(approval=approval, decision=body.decision, actor=person, note=body.note,
                           arguments=body.arguments, answer=body.answer, client_key=body.client_key)
    return _approval(request, approval_id)
