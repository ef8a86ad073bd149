"""Traces over the API: the traces list, a trace's skeleton (with subtree totals), search within it, a
span's detail and the run's decision records. A token acts as the person who made it (their role must
open traces)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import Http404
from ninja import Field, Router, Schema

from agents.models import Run
from agents.selectors import run_row
from console.access import token_access
from console.api_errors import ApiError, errors
from traces.selectors import (
    FilterRefused,
    decision_list,
    decision_out,
    span_detail,
    span_get,
    trace_filters,
    trace_page,
    trace_search,
    trace_skeleton,
)

router = Router(tags=["traces"])


class TraceOut(Schema):
    run: int = Field(description="The run's number in the tenant: what the trace paths take")
    trace_id: str
    agent: str
    status: str
    requested_by: str | None
    created_at: datetime
    finished_at: datetime | None
    duration_ms: int | None = Field(description="From the run's creation to its end; null while it runs")
    tokens: int
    cost_usd: Decimal
    has_error: bool = Field(description="Some span of the trace failed")


class TracePage(Schema):
    traces: list[TraceOut]
    next: str = Field(description="Pass as `after` for the next page; empty at the end")


class SkeletonOut(Schema):
    run: int
    trace_id: str
    status: str
    running: bool
    started_at: str = Field(description="The trace's start; rows' times are microseconds from it")
    fields: list[str] = Field(description="The columns of each row of `spans`")
    kinds: list[str] = Field(description="`kind` of a row indexes this list")
    statuses: list[str] = Field(description="`status` of a row indexes this list")
    spans: list[list] = Field(description="One row per span in tree order (a parent before its children); `parent` "
                                          "is a row index (-1 for the root); subtree_* are the span's own values "
                                          "plus its descendants'")


class SearchOut(Schema):
    q: str
    ids: list[int] = Field(description="The matching spans' ids (the skeleton's `id` column), in start order")


class DecisionRecordOut(Schema):
    step: int
    type: str = Field(description="call_tool, plan, ask, finish, fail or refuse")
    tool: str
    summary: str = Field(description="From the model's visible text (never hidden reasoning)")
    inputs: dict = Field(description="{messages: count, memory_ids: [...], tool_results: [call ids]}")
    policy_checks: list[dict] = Field(description="Each tool's risk, whether it needed approval, and the outcome")
    at: str


def _traced_run(request, number: int) -> Run:
    token_access(request, section="traces")
    run = run_row(tenant=request.tenant, number=number)
    if run is None or not run.trace_id:
        raise Http404
    return run


@router.get("/traces", response={200: TracePage, **errors(403)}, summary="Traces, filtered and sorted, a page at a time",
            description="Filters: agent (slug), status, requester (username), has_error, min_duration (seconds), "
                        "min_cost (USD), since/until (ISO date or time), q (a run number or a trace id). Sort: newest, "
                        "oldest, cost, duration. Keyset-paged: pass `next` as `after`.")
def list_traces(request, agent: str = "", status: str = "", requester: str = "", has_error: bool = False,
                min_duration: str = "", min_cost: str = "", since: str = "", until: str = "", q: str = "",
                sort: str = "newest", after: str = ""):
    token_access(request, section="traces")
    filters = trace_filters({"agent": agent, "status": status, "requester": requester, "has_error": "1" if has_error else "",
                             "min_duration": min_duration, "min_cost": min_cost, "since": since, "until": until,
                             "q": q, "sort": sort})
    try:
        runs, cursor = trace_page(tenant=request.tenant, filters=filters, after=after[:80])
    except FilterRefused as refused:
        raise ApiError(422, str(refused)) from None
    return {"next": cursor, "traces": [
        {"run": run.number, "trace_id": run.trace_id, "agent": run.agent.slug, "status": run.status,
         "requested_by": run.requested_by.username if run.requested_by else None, "created_at": run.created_at,
         "finished_at": run.finished_at,
         "duration_ms": int(run.duration.total_seconds() * 1000) if run.duration is not None else None,
         "tokens": run.input_tokens + run.output_tokens, "cost_usd": run.cost_usd, "has_error": run.has_error}
        for run in runs]}


@router.get("/traces/{number}", response={200: SkeletonOut, **errors(403, 404)},
            summary="A run's trace: every span as a compact row, with subtree totals")
def get_trace(request, number: int):
    run = _traced_run(request, number)
    return trace_skeleton(tenant=request.tenant, run=run)


@router.get("/traces/{number}/search", response={200: SearchOut, **errors(403, 404)},
            summary="Spans of a trace whose name or attributes contain the words")
def search_trace(request, number: int, q: str = ""):
    run = _traced_run(request, number)
    return {"q": q[:200], "ids": trace_search(tenant=request.tenant, run=run, query=q)}


@router.get("/traces/{number}/spans/{span_id}", response={200: dict, **errors(403, 404)},
            summary="One span's detail: attributes, messages, tool call, price, memories, approval, decision")
def get_span(request, number: int, span_id: int):
    run = _traced_run(request, number)
    span = span_get(tenant=request.tenant, run=run, span_id=span_id)
    if span is None:
        raise Http404
    return span_detail(tenant=request.tenant, run=run, span=span)


@router.get("/traces/{number}/decisions", response={200: list[DecisionRecordOut], **errors(403, 404)},
            summary="The run's decision records, one per step that decided")
def list_decisions(request, number: int):
    run = _traced_run(request, number)
    return [decision_out(decision) for decision in decision_list(tenant=request.tenant, run=run)]
