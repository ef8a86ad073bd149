"""The Demo systems page: what the demo tools actually did."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from console.access import tenant_access
from demo.selectors import demo_systems


@login_required
def systems(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="runs")
    request.section = "runs"
    return render(request, "demo/systems.html", demo_systems(tenant=membership.tenant))
