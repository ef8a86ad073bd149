"""Runs list, run page, run controls. (Approval decisions: approvals.views.decide.)"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents import services
from agents.forms import StartRunForm
from agents.models import Run
from agents.selectors import run_events_after, run_get, run_list, run_plan, run_row
from console.access import tenant_access
from console.roles import can_open


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
            run = services.run_start(tenant=membership.tenant, agent=form.cleaned_data["agent"],
                                     goal=form.cleaned_data["goal"], requested_by=request.user)
            return redirect("run_detail", tenant_slug, run.number)
        except services.RunError as error:
            form.add_error("goal", str(error))
    status = request.GET.get("status", "")
    return render(request, "agents/runs.html", {"runs": run_list(tenant=membership.tenant, status=status[:24]),
                                                "form": form, "status": status})


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
        "can_decide": can_open(membership.role, "approvals"),
    })


RUN_CONTROLS = {
    "cancel": services.run_cancel,
    "pause": services.run_pause,
    "resume": services.run_resume,
    "instruct": services.run_add_instruction,  # validates the text itself, with messages to show
}


@login_required
@require_POST
def run_control(request: HttpRequest, tenant_slug: str, run_number: int, action: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="runs")
    run = _run(membership, run_number)
    if action not in RUN_CONTROLS:
        raise Http404("No such action")
    try:
        RUN_CONTROLS[action](run=run, actor=request.user, **({"text": request.POST.get("text", "")}
                                                            if action == "instruct" else {}))
    except services.RunError as error:
        messages.error(request, str(error))
    return redirect("run_detail", tenant_slug, run.number)


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
