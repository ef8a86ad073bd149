"""Memories over the API (/api/v1/memories): the same selectors and services as the Memory page. A token acts
as the person who made it and sees what they see (their own, their teams', the tenant's, the agents'; an
admin everything in the tenant)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from ninja import Field, Router, Schema, Status
from pydantic import StrictBool, StrictFloat, StrictInt

from console.access import token_access
from console.api_auth import token_scopes
from console.api_errors import ApiError, errors
from memory import selectors, services
from memory.models import MAX_CONTENT_CHARS, MemoryRecord, Team
from memory.rules import Refused

# Reading memories needs runs:read, changing them memory:write (console/api_auth.py).
router = Router(tags=["memories"], auth=token_scopes(read="runs:read", write="memory:write", section="memory"))

Types = Literal["preference", "fact", "episode", "procedure"]


class MemoryOut(Schema):
    id: int
    scope: str
    owner: str
    subject: str
    type: str
    content: str = Field(description="Empty for a deleted memory")
    confidence: float
    status: str
    pinned: bool
    version: int
    expires_at: datetime | None
    source_run: int | None = Field(description="The number of the run that proposed it")
    source_step: int | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_owner(record: MemoryRecord) -> str:
        return selectors.owner_label(record)

    @staticmethod
    def resolve_source_run(record: MemoryRecord) -> int | None:
        return record.source_run.number if record.source_run_id and record.source_run else None


class VersionOut(Schema):
    number: int
    content: str
    type: str
    confidence: float
    status: str
    reason: str
    author: str = Field(alias="author_label")
    created_at: datetime


class MemoryIn(Schema):
    scope: Literal["user", "team", "tenant", "agent"] = "user"
    type: Types
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS, examples=["I prefer a short bullet summary first"])
    subject: str = Field(default="", max_length=200, examples=["email format"])
    confidence: StrictFloat | StrictInt = Field(default=0.9, ge=0, le=1)
    team: StrictInt | None = Field(default=None, description="The team's id (scope team)")
    agent: str = Field(default="", max_length=60, description="The agent's slug (scope agent)")


class CorrectionIn(Schema):
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    reason: str = Field(default="", max_length=300)


class PinIn(Schema):
    pinned: StrictBool


class ConfirmIn(Schema):
    content: str | None = Field(default=None, max_length=MAX_CONTENT_CHARS, description="Edit before confirming")


def _member(request):
    return token_access(request, section="memory")


def _record(request, membership, memory_id: int, *, change: bool = False) -> MemoryRecord:
    record = selectors.memory_get(membership.tenant, membership.user, membership.role, memory_id)
    if record is None:
        raise Http404
    if change and not services.can_change(record, user=membership.user, role=membership.role):
        raise PermissionDenied("Only the person it is about, or an admin, may change this memory.")
    return record


def _refused(refusal: Refused):
    raise ApiError(422, str(refusal))


@router.get("/memories", response={200: list[MemoryOut], **errors(403)}, summary="Memories the token's person may see")
def list_memories(request, tab: Literal["all", "me", "teams", "tenant", "agents", "confirm"] = "all",
                  type: Types | Literal[""] = "", status: str = "", q: str = "",
                  limit: int = 100):
    m = _member(request)
    filters = selectors.Filters(tab=tab, type=type, status=status[:12], q=q[:200])
    return selectors.memory_list(m.tenant, m.user, m.role, filters, limit=max(1, min(limit, 200)))


@router.get("/memories/search", response={200: list[MemoryOut], **errors(403, 422)},
            summary="Search by meaning and by words (keys such as ACME-042 match)")
def search_memories(request, q: str, limit: int = 20):
    m = _member(request)
    if not q.strip() or len(q) > 200:
        raise ApiError(422, "Search for 1 to 200 characters.")
    return selectors.search(m.tenant, m.user, m.role, q, limit=max(1, min(limit, 100)))


@router.get("/memories/export", response={200: list[dict], **errors(403)},
            summary="Everything the token's person may see, as JSON rows (deleted memories excepted)")
def export_memories(request):
    m = _member(request)
    return selectors.export_rows(m.tenant, m.user, m.role)


@router.post("/memories", response={201: MemoryOut, **errors(403, 422)}, summary="Remember something")
def create_memory(request, body: MemoryIn):
    m = _member(request)
    owner = {}
    if body.scope == "user":
        owner["user"] = m.user
    elif body.scope == "team":
        team = Team.objects.for_tenant(m.tenant).filter(pk=body.team or 0).first()
        if team is None or (m.role != "admin" and not team.members.filter(user=m.user).exists()):
            raise ApiError(422, "Name a team of this tenant you are a member of.")
        owner["team"] = team
    elif body.scope == "agent":
        from agents.models import Agent

        agent = Agent.objects.for_tenant(m.tenant).filter(slug=body.agent).first()
        if agent is None:
            raise ApiError(422, f"No agent '{body.agent}' in this tenant.")
        owner["agent"] = agent
    try:
        record = services.memory_create(tenant=m.tenant, actor=m.user, scope=body.scope, type=body.type,
                                        content=body.content, subject=body.subject, confidence=body.confidence, **owner)
    except Refused as refusal:
        _refused(refusal)
    return Status(201, record)


@router.get("/memories/{memory_id}", response={200: MemoryOut, **errors(403, 404)})
def get_memory(request, memory_id: int):
    m = _member(request)
    return _record(request, m, memory_id)


@router.get("/memories/{memory_id}/versions", response={200: list[VersionOut], **errors(403, 404)},
            summary="Every version, newest first")
def memory_versions(request, memory_id: int):
    m = _member(request)
    return selectors.versions_of(_record(request, m, memory_id))


@router.post("/memories/{memory_id}/corrections", response={200: MemoryOut, **errors(403, 404, 422)},
             summary="Correct a memory (a new version)")
def correct_memory(request, memory_id: int, body: CorrectionIn):
    m = _member(request)
    try:
        return services.memory_correct(_record(request, m, memory_id, change=True), actor=m.user, content=body.content,
                                       reason=body.reason)
    except Refused as refusal:
        _refused(refusal)


@router.put("/memories/{memory_id}/pin", response={200: MemoryOut, **errors(403, 404, 422)}, summary="Pin or unpin")
def pin_memory(request, memory_id: int, body: PinIn):
    m = _member(request)
    try:
        return services.memory_pin(_record(request, m, memory_id, change=True), actor=m.user, pinned=body.pinned)
    except Refused as refusal:
        _refused(refusal)


@router.post("/memories/{memory_id}/confirmation", response={200: MemoryOut, **errors(403, 404, 422)},
             summary="Confirm a proposed memory (optionally edited)")
def confirm_memory(request, memory_id: int, body: ConfirmIn):
    m = _member(request)
    try:
        return services.memory_confirm(_record(request, m, memory_id, change=True), actor=m.user, content=body.content)
    except Refused as refusal:
        _refused(refusal)


@router.post("/memories/{memory_id}/refusal", response={200: MemoryOut, **errors(403, 404, 422)},
             summary="Refuse a proposed memory (its content is erased)")
def refuse_memory(request, memory_id: int):
    m = _member(request)
    try:
        return services.memory_refuse(_record(request, m, memory_id, change=True), actor=m.user)
    except Refused as refusal:
        _refused(refusal)


@router.delete("/memories/{memory_id}", response={204: None, **errors(403, 404)},
               summary="Delete a memory: its content is erased everywhere; a tombstone stays in the audit log")
def delete_memory(request, memory_id: int):
    m = _member(request)
    services.memory_delete(_record(request, m, memory_id, change=True), actor=m.user)
    return HttpResponse(status=204)
