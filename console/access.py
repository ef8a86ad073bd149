"""The one access helper every tenant view, API endpoint and websocket consumer starts with.

An outsider (no membership in the tenant, or no such tenant) gets 404, so tenant
names and ids do not leak; a member whose role may not open the section gets 403.
``member_access`` is the rule; ``tenant_access`` (views), ``token_access`` (the API, as the
person who made the token) and ``socket_access`` (consumers: close codes 4404 / 4403) apply it.
"""

from __future__ import annotations

from functools import cache

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404

from console.db import prepared_cursor, row_instance, select_list
from console.models import Membership, Tenant
from console.roles import can_open

CLOSE_NOT_FOUND, CLOSE_FORBIDDEN = 4404, 4403


def membership_for(user, tenant_slug: str) -> Membership | None:
    """The user's membership of the tenant named ``tenant_slug``, its tenant and user attached, or None. One
    prepared statement: every page, API call and socket asks it first (the ORM's joins took ~1.5 ms to build)."""
    if not getattr(user, "is_authenticated", False):
        return None
    sql, people, ends = _membership_read()
    with prepared_cursor() as cursor:
        cursor.execute(sql, [user.pk, tenant_slug])
        row = cursor.fetchone()
    if row is None:
        return None
    membership = row_instance(Membership, row[:ends[0]])
    membership.tenant, membership.user = row_instance(Tenant, row[ends[0]:ends[1]]), row_instance(people, row[ends[1]:])
    return membership


@cache
def _membership_read() -> tuple[str, type, tuple[int, int]]:
    """The statement, the user model, and where the membership's and the tenant's columns end in its row."""
    people = Membership._meta.get_field("user").related_model
    sql = (f'SELECT {select_list("m", Membership)}, {select_list("t", Tenant)}, {select_list("u", people)} '
           f'FROM {Membership._meta.db_table} m JOIN {Tenant._meta.db_table} t ON t.id = m.tenant_id '
           f'JOIN {people._meta.db_table} u ON u.id = m.user_id WHERE m.user_id = %s AND t.slug = %s')
    memberships = len(Membership._meta.concrete_fields)
    return sql, people, (memberships, memberships + len(Tenant._meta.concrete_fields))


def member_access(user, *, section: str, tenant_slug: str | None = None, tenant=None) -> Membership:
    """The user's membership of the tenant (by slug, or the tenant itself), if their role opens ``section``.
    Raises Http404 for an outsider, PermissionDenied (with the reason) for a role that may not."""
    if tenant is not None:
        membership = Membership.objects.for_tenant(tenant).select_related("tenant", "user").filter(
            user=user).first() if getattr(user, "pk", None) else None
    else:
        membership = membership_for(user, tenant_slug or "")
    if membership is None:
        raise Http404("No such tenant")
    if not can_open(membership.role, section):
        raise PermissionDenied(f"Your role in {membership.tenant.name} ({membership.role}) cannot open {section}.")
    return membership


def tenant_access(request, tenant_slug: str, *, section: str) -> Membership:
    membership = member_access(request.user, tenant_slug=tenant_slug, section=section)
    request.membership = membership
    request.tenant = membership.tenant
    if request.session.get("tenant") != membership.tenant.slug:  # assigning always marks the session dirty
        request.session["tenant"] = membership.tenant.slug
    return membership


def token_access(request, *, section: str) -> Membership:
    """An API request acts as the person who made its token, with their current role in the token's tenant."""
    return member_access(request.api_token.created_by, tenant=request.tenant, section=section)


async def socket_access(consumer, *, section: str) -> Membership | None:
    """A websocket's membership for its URL's tenant, or None after closing it (4404 outsider, 4403 role)."""
    slug = consumer.scope["url_route"]["kwargs"]["tenant_slug"]
    try:
        return await database_sync_to_async(member_access)(consumer.scope["user"], tenant_slug=slug, section=section)
    except Http404:
        await consumer.close(code=CLOSE_NOT_FOUND)
    except PermissionDenied:
        await consumer.close(code=CLOSE_FORBIDDEN)
    return None
