"""Traces over the API: the traces list, a trace's skeleton (with subtree totals), search within it, a
span's detail and the run's decision records. A token acts as the person who made it (their role must
open traces)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import Http404, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from agents.models import Agent, Run
from agents.selectors import run_row
from agents.services import RunError
from console.access import token_access
from console.api_auth import token_scopes
from console.api_errors import ApiError, errors
from traces.replay import batch_get, batch_rows, replay_batch_create, replay_compare, replay_of, replay_start
from traces.selectors import (
    FilterRefused,
    SkeletonRefused,
    decision_list,
    decision_out,
    span_detail,
    span_get,
    trace_filters,
    trace_page,
    trace_search,
    trace_skeleton_json,
)

# Reading traces needs runs:read; a replay starts a run: runs:write (console/api_auth.py).
router = Router(tags=["traces"], auth=token_scopes(read="runs:read", write="runs:write", section="traces"))


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
    total: int = Field(description="How many rows the whole trace has")
    page: int | None = Field(None, description="With `?page=`: this page's number")
    offset: int | None = Field(None, description="With `?page=`: the row index of this page's first row")
    pages: int | None = Field(None, description="How many pages the trace has (a running run's: one)")
    version: int = Field(description="Which version of an ended run's trace the rows belong to (spans stored late make a new one)")


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


@router.get("/traces/{number}", response={200: SkeletonOut, **errors(400, 403, 404)},
            summary="A run's trace: every span as a compact row, with subtree totals",
            description="The whole trace, or with `page` one page of its rows (5,000 at most; `offset` places them, "
                        "`pages` says how many there are). An ended run's pages belong to one `version` of it; a "
                        "running run's trace is one page. 400 for a page the trace does not have.")
def get_trace(request, number: int, page: int | None = Query(None, ge=0, description="A page number, from 0")):
    run = _traced_run(request, number)
    try:
        body = trace_skeleton_json(tenant=request.tenant, run=run, page=page)
    except SkeletonRefused as refused:
        raise ApiError(400, str(refused)) from None
    return HttpResponse(body, content_type="application/json")


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


class ReplayIn(Schema):
    model: str = Field("", max_length=100, description='Another model, "<provider>:<model>"; empty: the agent\'s')
    agent_version: int | None = Field(None, description="Another version of the agent; null: its current version")
    instructions: str | None = Field(None, max_length=20_000, description="Edited instructions; null: the version's")
    read_only: str = Field("recorded", description="Read-only tools: live, or recorded (answered from the recording)")


class ReplayOut(Schema):
    run: int = Field(description="The replay's run number")
    original: int
    compare: dict = Field(description="Both sides (steps, tokens, cost, duration, answer), the tool calls paired with "
                                      "argument diffs, and the first divergence (null: none so far)")


class BatchIn(Schema):
    agent: str = Field(max_length=60, description="The agent's slug")
    runs: int = Field(10, description="How many of its last ended runs to replay (1–100)")
    model: str = Field("", max_length=100)
    agent_version: int | None = None
    read_only: str = "recorded"


class BatchOut(Schema):
    id: int
    agent: str
    runs_wanted: int
    runs_started: int
    runs_finished: int
    diverged: int
    error: str
    replays: list[dict] = Field(description="Each replay: original and replay run numbers, status, first divergence")


def _replay_out(replay) -> dict:
    return {"run": replay.run.number, "original": replay.original.number, "compare": replay_compare(replay=replay)}


@router.post("/traces/{number}/replays", response={201: ReplayOut, **errors(403, 404, 409)},
             summary="Replay a run with another model, agent version or instructions",
             description="A new run of the same goal, marked as a replay. Tools with side effects (risk ≥ 1) never run "
                         "for real: each call is answered from the original's recorded result for the same tool and "
                         "arguments, or gets a `no_recorded_result` error. 409 when the run has not ended, 422 for a "
                         "model or version that cannot be used.")
def create_replay(request, number: int, body: ReplayIn):
    original = _traced_run(request, number)
    token_access(request, section="runs")  # a replay starts a run
    if not original.is_terminal:
        raise ApiError(409, "Replay a run once it has ended: its recording is not complete yet.")
    try:
        run = replay_start(original=original, actor=request.api_token.created_by, model=body.model,
                           agent_version=body.agent_version, instructions=body.instructions, read_only=body.read_only)
    except RunError as refused:
        raise ApiError(422, str(refused)) from None
    return Status(201, _replay_out(replay_of(tenant=request.tenant, run=run)))


@router.get("/traces/{number}/compare", response={200: ReplayOut, **errors(403, 404)},
            summary="A replay beside its original, and where they first diverged")
def compare_replay(request, number: int):
    replay = replay_of(tenant=request.tenant, run=_traced_run(request, number))
    if replay is None:
        raise Http404
    return _replay_out(replay)


def _batch_out(batch) -> dict:
    rows = batch_rows(batch=batch)
    return {"id": batch.pk, "agent": batch.agent.slug, "runs_wanted": batch.runs_wanted, "runs_started": batch.runs_started,
            "runs_finished": sum(1 for row in rows if row["compare"] is not None),
            "diverged": sum(1 for row in rows if row["compare"] and row["compare"]["divergence"]), "error": batch.error,
            "replays": [{"original": row["replay"].original.number, "run": row["replay"].run.number,
                         "status": row["replay"].run.status,
                         "divergence": row["compare"]["divergence"] if row["compare"] else None} for row in rows]}


@router.post("/replay-batches", response={202: BatchOut, **errors(403, 404)},
             summary="Replay an agent's last N ended runs (a background job)")
def create_batch(request, body: BatchIn):
    token_access(request, section="traces")
    token_access(request, section="runs")  # a batch replay starts runs
    agent = Agent.objects.for_tenant(request.tenant).filter(slug=body.agent).first()
    if agent is None:
        raise ApiError(422, f"No agent '{body.agent}' in this tenant.")
    try:
        batch = replay_batch_create(tenant=request.tenant, agent=agent, runs=body.runs, actor=request.api_token.created_by,
                                    model=body.model, agent_version=body.agent_version, read_only=body.read_only)
    except RunError as refused:
        raise ApiError(422, str(refused)) from None
    return Status(202, _batch_out(batch))


@router.get("/replay-batches/{batch_id}", response={200: BatchOut, **errors(403, 404)},
            summary="A batch replay's progress and divergences")
def get_batch(request, batch_id: int):
    token_access(request, section="traces")
    batch = batch_get(tenant=request.tenant, batch_id=batch_id)
    if batch is None:
        raise Http404
    return _batch_out(batch)
