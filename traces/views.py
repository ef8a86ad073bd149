"""The traces list and a run's timeline: the page, its skeleton, search within it, a span's detail
(loaded on demand) and the run's decision records. Thin: access, selectors, render."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from agents.models import Agent, Run, RunStatus
from agents.selectors import run_row
from agents.services import RunError
from console.access import tenant_access
from console.input import strict_int
from console.selectors import member_list
from traces.models import KINDS, ReadOnlyTools
from traces.replay import (
    agent_versions,
    batch_get,
    batch_rows,
    replay_batch_create,
    replay_compare,
    replay_of,
    replay_start,
)
from traces.selectors import (
    FilterRefused,
    SkeletonRefused,
    decision_list,
    open_wait_detail,
    span_detail,
    span_get,
    trace_filters,
    trace_page,
    trace_search,
    trace_skeleton_json,
)

KIND_LABELS = {"run": "run", "step": "step", "model": "model call", "tool": "tool call", "approval": "approval wait",
               "memory_search": "memory search", "memory_write": "memory write", "checkpoint": "checkpoint",
               "budget": "budget check", "other": "other"}


def _traced_run(membership, run_number: int) -> Run:
    run = run_row(tenant=membership.tenant, number=run_number)
    if run is None or not run.trace_id:
        raise Http404("No such trace")
    return run


@login_required
def traces(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="traces")
    request.section = "traces"
    filters = trace_filters(request.GET)
    after = request.GET.get("after", "")
    problem, runs, next_cursor = "", [], ""
    try:
        runs, next_cursor = trace_page(tenant=membership.tenant, filters=filters, after=after)
    except FilterRefused as refused:
        problem = str(refused)
    query = urlencode({k: ("1" if v is True else v) for k, v in filters.items() if v and not (k == "sort" and v == "newest")})
    template = "traces/traces.html#rows" if request.htmx and after else "traces/traces.html"
    return render(request, template, {
        "runs": runs, "next_cursor": next_cursor, "filters": filters, "query": query, "problem": problem,
        "statuses": RunStatus.choices, "agents": Agent.objects.for_tenant(membership.tenant),
        "requesters": member_list(tenant=membership.tenant),
        "sorts": [("newest", "newest"), ("oldest", "oldest"), ("cost", "cost, highest"), ("duration", "duration, longest")],
        "read_only_choices": ReadOnlyTools.choices,
    }, status=400 if problem else 200)


_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def _script_json(body: bytes) -> str:
    """JSON to carry in a <script type="application/json">: the characters that could end it escaped (they
    only occur inside strings, where the escape means the same)."""
    return mark_safe(body.decode().translate(_SCRIPT_ESCAPES))  # noqa: S308 (escaped above)


@login_required
def timeline(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """The page carries the skeleton's first screenful, so its first rows paint without waiting for a request
    or for the rest of a big trace (which the page asks for after, in pages); the decisions load after."""
    membership = tenant_access(request, tenant_slug, section="traces")
    request.section = "traces"
    run = _traced_run(membership, run_number)
    head = trace_skeleton_json(tenant=membership.tenant, run=run, head=True)
    return render(request, "traces/timeline.html", {
        "run": run, "kinds": [(kind, KIND_LABELS[kind]) for kind in KINDS], "skeleton_head": _script_json(head),
        "versions": agent_versions(run.agent),
        "replay": replay_of(tenant=membership.tenant, run=run), "read_only_choices": ReadOnlyTools.choices})


def _json(data, *, started: float, status: int = 200) -> HttpResponse:
    body = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":"))
    server_ms = (time.perf_counter() - started) * 1000
    return HttpResponse(body, content_type="application/json", status=status,
                        headers={"Server-Timing": f"app;dur={server_ms:.1f}", "Cache-Control": "no-store"})


@login_required
def skeleton(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    started = time.perf_counter()
    membership = tenant_access(request, tenant_slug, section="traces")
    run = _traced_run(membership, run_number)
    page = request.GET.get("page")
    if page is not None and (page := strict_int(page)) is None:
        return _json({"error": "page is a page number, like 0"}, started=started, status=400)
    try:
        body = trace_skeleton_json(tenant=membership.tenant, run=run, head=request.GET.get("head") == "1", page=page)
    except SkeletonRefused as refused:
        return _json({"error": str(refused)}, started=started, status=400)
    return _json(body, started=started)


@login_required
def search(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    started = time.perf_counter()
    membership = tenant_access(request, tenant_slug, section="traces")
    run = _traced_run(membership, run_number)
    return _json({"q": request.GET.get("q", "")[:200],
                  "ids": trace_search(tenant=membership.tenant, run=run, query=request.GET.get("q", ""))},
                 started=started)


@login_required
def span(request: HttpRequest, tenant_slug: str, run_number: int, span_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="traces")
    run = _traced_run(membership, run_number)
    found = span_get(tenant=membership.tenant, run=run, span_id=span_id) if span_id else None
    if found is None:
        return render(request, "traces/partials/span_detail.html", {"missing": True, "run": run}, status=404 if span_id else 200)
    detail = span_detail(tenant=membership.tenant, run=run, span=found)
    return render(request, "traces/partials/span_detail.html", {"detail": detail, "run": run,
                                                                "kind_label": KIND_LABELS.get(found.kind, found.kind)})


@login_required
def open_wait(request: HttpRequest, tenant_slug: str, run_number: int, approval_id: int) -> HttpResponse:
    """An approval wait still open, as a span's detail: who it waits for, since when, a link to the approval."""
    membership = tenant_access(request, tenant_slug, section="traces")
    run = _traced_run(membership, run_number)
    detail = open_wait_detail(tenant=membership.tenant, run=run, approval_id=approval_id)
    if detail is None:  # decided since: its span is in the skeleton now
        return render(request, "traces/partials/span_detail.html", {"missing": True, "decided": True, "run": run})
    return render(request, "traces/partials/span_detail.html", {"detail": detail, "run": run,
                                                                "kind_label": KIND_LABELS["approval"]})


@login_required
def decisions(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """The run's decision records, as the run page and the timeline show them."""
    membership = tenant_access(request, tenant_slug, section="traces")
    run = _traced_run(membership, run_number)
    return render(request, "traces/partials/decisions.html", {"decisions": decision_list(tenant=membership.tenant, run=run),
                                                              "run": run})


def _replay_access(request: HttpRequest, tenant_slug: str):
    """A replay reads the original's trace and starts a run: a role that may open traces and start runs."""
    tenant_access(request, tenant_slug, section="traces")
    return tenant_access(request, tenant_slug, section="runs")


def _version_choice(text: str) -> int | None:
    """The agent version chosen in a form: empty is the current one; anything but a number is refused."""
    if not text:
        return None
    if (version := strict_int(text)) is None:
        raise RunError("The agent version is a number, like 2 (or empty for the current one).")
    return version


@login_required
@require_POST
def replay(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """Replay with…: another model, agent version or edited instructions; side effects from the recording."""
    membership = _replay_access(request, tenant_slug)
    original = _traced_run(membership, run_number)
    instructions = request.POST.get("instructions", "")
    try:
        run = replay_start(original=original, actor=request.user, model=request.POST.get("model", ""),
                           agent_version=_version_choice(request.POST.get("agent_version", "")),
                           instructions=instructions if request.POST.get("edit_instructions") else None,
                           read_only=request.POST.get("read_only", ReadOnlyTools.RECORDED))
    except RunError as refused:
        messages.error(request, str(refused))
        return redirect("trace_timeline", tenant_slug, original.number)
    messages.success(request, f"Run #{run.number} replays run #{original.number}; side effects come from the recording.")
    return redirect("trace_compare", tenant_slug, run.number)


@login_required
def compare(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """A replay beside its original: steps, tool calls and argument diffs, answers, tokens, cost, duration,
    and where they first diverged."""
    membership = tenant_access(request, tenant_slug, section="traces")
    request.section = "traces"
    found = replay_of(tenant=membership.tenant, run=_traced_run(membership, run_number))
    if found is None:
        raise Http404("This run is not a replay")
    return render(request, "traces/compare.html", {"replay": found, "compare": replay_compare(replay=found)})


@login_required
@require_POST
def batch_create(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = _replay_access(request, tenant_slug)
    agent = Agent.objects.for_tenant(membership.tenant).filter(slug=request.POST.get("agent", "")[:60]).first()
    try:
        if agent is None:
            raise RunError("Choose an agent of this tenant.")
        batch = replay_batch_create(tenant=membership.tenant, agent=agent, runs=strict_int(request.POST.get("runs", ""), 0),
                                    actor=request.user, model=request.POST.get("model", ""),
                                    agent_version=_version_choice(request.POST.get("agent_version", "")),
                                    read_only=request.POST.get("read_only", ReadOnlyTools.RECORDED))
    except RunError as refused:
        messages.error(request, str(refused))
        return redirect("traces", tenant_slug)
    return redirect("trace_batch", tenant_slug, batch.pk)


@login_required
def batch(request: HttpRequest, tenant_slug: str, batch_id: int) -> HttpResponse:
    """A batch replay's progress and its table of divergences."""
    membership = tenant_access(request, tenant_slug, section="traces")
    request.section = "traces"
    found = batch_get(tenant=membership.tenant, batch_id=batch_id)
    if found is None:
        raise Http404("No such batch")
    rows = batch_rows(batch=found)
    finished = sum(1 for row in rows if row["compare"] is not None)
    return render(request, "traces/batch.html", {
        "batch": found, "rows": rows, "finished": finished,
        "diverged": sum(1 for row in rows if row["compare"] and row["compare"]["divergence"]),
        "done": finished == found.runs_wanted or bool(found.error)})
