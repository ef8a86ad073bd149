"""The agents pages: everyone sees the tenant's agents read-only; admins create, edit, disable and enable them,
see each version's diff and runs, and start a run on any version."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents import services
from agents.forms import AgentForm
from agents.gateway import configured_providers, model_suggestions
from agents.run_audit import run_start_audited
from agents.selectors import agent_get, agent_list, agent_version_history
from agents.tools import tenant_tools
from console.access import tenant_access
from console.roles import can_open


def _agent(membership, agent_slug: str):
    agent = agent_get(tenant=membership.tenant, slug=agent_slug)
    if agent is None:
        raise Http404("No such agent")
    return agent


def _form_page(request, form, *, agent=None) -> HttpResponse:
    return render(request, "agents/agent_form.html", {
        "form": form, "agent": agent, "models": model_suggestions(), "providers": configured_providers()})


@login_required
def agents(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="agents")
    request.section = "agents"
    return render(request, "agents/agents.html", {"agents": agent_list(tenant=membership.tenant),
                                                  "can_admin": can_open(membership.role, "admin")})


@login_required
def agent_new(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "agents"
    form = AgentForm(request.POST or None, tool_names=sorted(tenant_tools(membership.tenant)), creating=True, initial={
        "model": "demo:planner", "max_steps": 30, "max_tokens": 200_000, "max_cost_usd": "5", "max_seconds": 3600,
        "plan_mode": True})
    if request.method == "POST" and form.is_valid():
        try:
            agent = services.agent_create(tenant=membership.tenant, actor=request.user,
                                          slug=form.cleaned_data["slug"], **form.values())
        except services.AgentRefused as refused:
            form.add_problems(refused.problems)
        else:
            messages.success(request, f"{agent.name} created (version 1).")
            return redirect("agent_detail", tenant_slug, agent.slug)
    return _form_page(request, form)


@login_required
def agent_detail(request: HttpRequest, tenant_slug: str, agent_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="agents")
    request.section = "agents"
    agent = _agent(membership, agent_slug)
    return render(request, "agents/agent.html", {
        "agent": agent, "history": agent_version_history(agent=agent), "can_admin": can_open(membership.role, "admin")})


@login_required
def agent_edit(request: HttpRequest, tenant_slug: str, agent_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "agents"
    agent = _agent(membership, agent_slug)
    tool_names = sorted(set(tenant_tools(membership.tenant)) | set(agent.tools))
    form = AgentForm(request.POST or None, tool_names=tool_names, creating=False, initial=AgentForm.initial_for(agent))
    if request.method == "POST" and form.is_valid():
        try:
            before = agent.version
            agent = services.agent_update(agent=agent, actor=request.user, **form.values())
        except services.AgentRefused as refused:
            form.add_problems(refused.problems)
        except services.RunError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Saved as version {agent.version}; runs already going keep theirs."
                             if agent.version != before else "Saved (no change to what the agent does).")
            return redirect("agent_detail", tenant_slug, agent.slug)
    return _form_page(request, form, agent=agent)


@login_required
@require_POST
def agent_enabled(request: HttpRequest, tenant_slug: str, agent_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    agent = _agent(membership, agent_slug)
    enable = request.POST.get("enabled") == "1"
    services.agent_set_enabled(agent=agent, enabled=enable, actor=request.user)
    messages.success(request, f"{agent.name} is enabled." if enable else
                     f"{agent.name} is disabled: it starts no new runs; runs going on finish with their version.")
    return redirect("agent_detail", tenant_slug, agent.slug)


@login_required
@require_POST
def agent_version_run(request: HttpRequest, tenant_slug: str, agent_slug: str, version: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    agent = _agent(membership, agent_slug)
    try:
        run = run_start_audited(tenant=membership.tenant, agent=agent, goal=request.POST.get("goal", ""),
                                actor=request.user, version=version)
    except services.RunError as error:
        messages.error(request, str(error))
        return redirect("agent_detail", tenant_slug, agent.slug)
    return redirect("run_detail", tenant_slug, run.number)
