"""Runs list, run page, run controls. (Approval decisions: approvals.views.decide.)"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents import services
from agents.controls import control_refusal, run_actions
from agents.forms import StartRunForm
from agents.models import Agent, Run, RunStatus
from agents.run_audit import run_control_take, run_start_audited
from agents.selectors import run_events_after, run_filters, run_get, run_page, run_plan, run_row
from console.access import tenant_access
from console.input import strict_int
from console.roles import can_open
from console.selectors import member_list


def _run(membership, run_number: int) -> Run:
    """The run (by its number in the tenant), without its approvals (controls and the plan editor need none), or 404."""
    run = run_row(tenant=membership.tenant, number=run_number)
    if run is None:
        raise Http404("No such run")
    return run


@login_required
def runs(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="runs")
    request.section = "runs"
    form = StartRunForm(request.POST or None, tenant=membership.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            run = run_start_audited(tenant=membership.tenant, agent=form.cleaned_data["agent"],
                                    goal=form.cleaned_data["goal"], actor=request.user)
            return redirect("run_detail", tenant_slug, run.number)
        except services.RunError as error:
            form.add_error("goal", str(error))
    filters = run_filters(request.GET)
    before = request.GET.get("before", "")
    runs, next_cursor = run_page(tenant=membership.tenant, filters=filters, before=strict_int(before))
    template = "agents/runs.html#rows" if request.htmx and before else "agents/runs.html"
    return render(request, template, {
        "runs": runs, "next_cursor": next_cursor, "form": form, "filters": filters, "paged": bool(before),
        "query": urlencode({k: v for k, v in filters.items() if v}), "statuses": RunStatus.choices,
        "agents": Agent.objects.for_tenant(membership.tenant), "requesters": member_list(tenant=membership.tenant),
    })


@login_required
def run_detail(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="runs")
    request.section = "runs"
    try:
        run = run_get(tenant=membership.tenant, number=run_number)  # with its approvals, as the card shows them
    except Run.DoesNotExist:
        raise Http404("No such run") from None
    events = run_events_after(run=run, after=0, limit=10_000)
    return render(request, "agents/run.html", {
        "run": run, "plan": run_plan(run=run), "events": events, "last_seq": events[-1].seq if events else 0,
        "can_decide": can_open(membership.role, "approvals"), "actions": run_actions(run),
        "timeline_kinds": [("", "everything"), ("tool", "tool calls"), ("model", "model calls"), ("person", "people"),
                           ("plan", "plan"), ("status", "status changes")],
    })


@login_required
@require_POST
def run_control(request: HttpRequest, tenant_slug: str, run_number: int, action: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="runs")
    run = _run(membership, run_number)
    if action not in ("cancel", "pause", "resume", "instruct"):
        raise Http404("No such action")
    if action not in run_actions(run):
        messages.error(request, control_refusal(action, run))
        return _back_to_run(request, tenant_slug, run)
    try:
        run_control_take(run=run, action=action, actor=request.user, text=request.POST.get("text", ""),
                         reason=request.POST.get("reason", ""))
    except services.RunError as error:
        run = _run(membership, run_number)  # as it is now: the refusal says why in its words
        messages.error(request, str(error) if action == "instruct" else control_refusal(action, run))
    return _back_to_run(request, tenant_slug, run)


def _back_to_run(request: HttpRequest, tenant_slug: str, run: Run) -> HttpResponse:
    """To the run page (a refusal said there); the controls post with htmx when rendered live."""
    response = redirect("run_detail", tenant_slug, run.number)
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": response["Location"]})
    return response


@login_required
def run_plan_editor(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """Edit a paused run's plan: the steps not done yet. Reviewers and admins, and the run's requester."""
    membership = tenant_access(request, tenant_slug, section="runs")
    request.section = "runs"
    run = _run(membership, run_number)
    if not (can_open(membership.role, "approvals") or run.requested_by_id == request.user.pk):
        raise PermissionDenied("Only reviewers, admins and the person who started the run edit its plan.")
    done, editable = services.plan_editable_steps(run_plan(run=run))
    steps, error, status = [step.title for step in editable], "", 200
    if request.method == "POST":
        # What they typed stays to fix; a refused edit that left no step shows the plan as it was, not blank rows.
        steps = [step for step in request.POST.getlist("steps") if step.strip()] or steps
        try:
            services.run_plan_edit(run=run, actor=request.user, steps=steps)
            messages.success(request, "Plan saved. The agent follows it when the run is resumed.")
            return redirect("run_detail", tenant_slug, run.number)
        except services.RunError as refused:
            error, status = str(refused), 422
    return render(request, "agents/plan_editor.html", {"run": run, "done": done, "steps": steps, "error": error,
                                                       "editable": run.status == "paused"}, status=status)
