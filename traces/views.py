"""The traces list and a run's timeline: the page, its skeleton, search within it, a span's detail
(loaded on demand) and the run's decision records. Thin: access, selectors, render."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from agents.models import Agent, Run, RunStatus
from agents.selectors import run_row
from console.access import tenant_access
from console.selectors import member_list
from traces.models import KINDS
from traces.selectors import (
    FilterRefused,
    decision_list,
    span_detail,
    span_get,
    trace_filters,
    trace_page,
    trace_search,
    trace_skeleton,
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
    }, status=400 if problem else 200)


@login_required
def timeline(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="traces")
    request.section = "traces"
    run = _traced_run(membership, run_number)
    return render(request, "traces/timeline.html", {
        "run": run, "kinds": [(kind, KIND_LABELS[kind]) for kind in KINDS],
        "decisions": decision_list(tenant=membership.tenant, run=run)})


def _json(data, *, started: float) -> HttpResponse:
    body = json.dumps(data, separators=(",", ":"))
    server_ms = (time.perf_counter() - started) * 1000
    return HttpResponse(body, content_type="application/json",
                        headers={"Server-Timing": f"app;dur={server_ms:.1f}", "Cache-Control": "no-store"})


@login_required
def skeleton(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    started = time.perf_counter()
    membership = tenant_access(request, tenant_slug, section="traces")
    run = _traced_run(membership, run_number)
    return _json(trace_skeleton(tenant=membership.tenant, run=run), started=started)


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
def decisions(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """The run's decision records, as the run page and the timeline show them."""
    membership = tenant_access(request, tenant_slug, section="traces")
    run = _traced_run(membership, run_number)
    return render(request, "traces/partials/decisions.html", {"decisions": decision_list(tenant=membership.tenant, run=run),
                                                              "run": run})
