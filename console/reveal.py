"""A secret shown once after a POST that made it: kept in the (server-side) session across the redirect
and removed by the page that shows it, so a reload neither makes another one nor shows it again.
Per tenant: a secret of one tenant never appears on another tenant's page. The page that shows it
is sent with Cache-Control: no-store (views use never_cache)."""

from __future__ import annotations


def _key(tenant, what: str) -> str:
    return f"reveal-once:{tenant.pk}:{what}"


def reveal_once(request, *, tenant, what: str, value) -> None:
    request.session[_key(tenant, what)] = value


def revealed(request, *, tenant, what: str):
    """The value kept for this page, once (None afterwards)."""
    return request.session.pop(_key(tenant, what), None)
