"""The tools page (admins): the registry with each tool's governance, schema, agents and use; raising a risk."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from agents.selectors import tool_catalog
from agents.tool_settings import RiskRefused, tool_risk_set
from agents.tools import tool_for
from console.access import tenant_access
from console.input import strict_int

RISK_LEVELS = {0: "read", 1: "local write", 2: "external draft", 3: "external side effect", 4: "high risk"}


@login_required
@require_GET
def tools(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    return render(request, "agents/tools.html", {"tools": tool_catalog(tenant=membership.tenant),
                                                 "risk_levels": RISK_LEVELS})


@login_required
@require_POST
def tool_risk(request: HttpRequest, tenant_slug: str, tool_name: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    spec = tool_for(membership.tenant, tool_name)
    if spec is None:
        raise Http404("No such tool")
    risk = strict_int(request.POST.get("risk", ""))
    try:
        tool_risk_set(tenant=membership.tenant, spec=spec, risk=risk if risk is not None else -1, actor=request.user)
        messages.success(request, f"{spec.name} is at risk {risk} in {membership.tenant.name}.")
    except RiskRefused as error:
        messages.error(request, str(error))
    return redirect(reverse("admin_tools", args=[tenant_slug]) + f"#tool-{spec.name}")
