"""The one access helper every tenant view, API endpoint and consumer starts with.

An outsider (no membership in the tenant, or no such tenant) gets 404, so tenant
names and ids do not leak; a member whose role may not open the section gets 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from console.models import Membership
from console.roles import can_open


def membership_for(user, tenant_slug: str) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.select_related("tenant", "user").filter(user=user, tenant__slug=tenant_slug).first()


def tenant_access(request, tenant_slug: str, *, section: str) -> Membership:
    membership = membership_for(request.user, tenant_slug)
    if membership is None:
        raise Http404("No such tenant")
    request.membership = membership
    request.tenant = membership.tenant
    if not can_open(membership.role, section):
        raise PermissionDenied(f"Your role in {membership.tenant.name} ({membership.role}) cannot open {section}.")
    if request.session.get("tenant") != membership.tenant.slug:  # assigning always marks the session dirty
        request.session["tenant"] = membership.tenant.slug
    return membership
