from django.urls import reverse

from console.roles import NAVIGATION, can_open
from console.selectors import memberships_of


def shell(request) -> dict:
    """The console shell: current tenant and role, the tenant switcher, navigation for the role."""
    membership = getattr(request, "membership", None)
    nav = []
    if membership is not None:
        slug = membership.tenant.slug
        nav = [
            {"section": section, "label": label, "url": reverse(url_name, args=[slug]), "key": key}
            for section, label, url_name, key in NAVIGATION
            if can_open(membership.role, section)
        ]
    approvals_open = None  # the navigation badge: full pages only (htmx partials have no navigation)
    if membership is not None and can_open(membership.role, "approvals") and not getattr(request, "htmx", False):
        from approvals.selectors import open_count

        approvals_open = open_count(tenant=membership.tenant)
    return {
        "approvals_open": approvals_open,
        "membership": membership,
        "memberships": memberships_of(getattr(request, "user", None)),
        "nav": nav,
        "section": getattr(request, "section", ""),
    }
