"""Writes for tenancy, audit and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from console.models import ALL_SCOPES, ApiToken, AuditEvent, Membership, Role, Tenant

TOKEN_PREFIX = "prt_"


def audit_record(*, tenant: Tenant | int, actor, verb: str, target: str = "", data: dict | None = None) -> AuditEvent:
    """``tenant``: the tenant or its id (a caller holding only the id need not load the row)."""
    return AuditEvent.objects.create(
        tenant_id=getattr(tenant, "pk", tenant),
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=getattr(actor, "username", "") or str(actor or "system"),
        verb=verb,
        target=target[:200],
        data=data or {},
    )


class LastAdminError(Exception):
    """A tenant must keep at least one admin."""


@transaction.atomic
def membership_change_role(*, membership: Membership, role: Role | str, actor) -> Membership:
    role = Role(role)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == role:
        return locked
    if locked.role == Role.ADMIN:
        other_admins = Membership.objects.for_tenant(locked.tenant).filter(role=Role.ADMIN).exclude(pk=locked.pk)
        if not other_admins.select_for_update().exists():
            raise LastAdminError(f"{locked.user.username} is the last admin of {locked.tenant.name}.")
    previous = locked.role
    locked.role = role
    locked.save(update_fields=["role"])
    audit_record(
        tenant=locked.tenant, actor=actor, verb="membership.role_changed",
        target=locked.user.username, data={"from": previous, "to": role.value},
    )
    return locked


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


class TokenRefused(Exception):
    """A token that cannot be made as asked (no scope, an unknown one, more than the asking token has)."""


def scopes_checked(scopes, *, within=None) -> list[str]:
    """The scopes in their canonical order, if each is known (and, ``within`` a token's scopes, held by it)."""
    scopes = list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise TokenRefused(f"Unknown scopes: {', '.join(map(str, unknown))}; choose from {', '.join(ALL_SCOPES)}.")
    if not scopes:
        raise TokenRefused("Choose at least one scope.")
    if within is not None and (beyond := [s for s in scopes if s not in within]):
        raise TokenRefused(f"A token cannot make a token with scopes it does not have: {', '.join(beyond)}.")
    return [s for s in ALL_SCOPES if s in scopes]


def api_token_create(*, tenant: Tenant, name: str, actor, secret: str | None = None, scopes=None,
                     within=None) -> IssuedToken:
    """``scopes``: what the token may do (all of them when not given); ``within``: the scopes of the token asking,
    when a token makes a token (it cannot give more than it has)."""
    scopes = scopes_checked(ALL_SCOPES if scopes is None else scopes, within=within)
    secret = secret or TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            tenant=tenant, name=name.strip()[:100] or "API token", prefix=secret[:10], scopes=scopes,
            token_hash=token_hash(secret), created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(tenant=tenant, actor=actor, verb="api_token.created", target=token.name,
                     data={"prefix": token.prefix, "scopes": scopes})
    return IssuedToken(token=token, secret=secret)


def api_token_revoke(*, token: ApiToken, actor) -> ApiToken:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now())
        if updated:
            audit_record(tenant=token.tenant, actor=actor, verb="api_token.revoked", target=token.name,
                         data={"prefix": token.prefix})
    token.refresh_from_db()
    return token


def api_token_authenticate(secret: str) -> ApiToken | None:
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    # With its creator: a token acts as the person who made it (the runs it starts are theirs).
    token = ApiToken.objects.select_related("tenant", "created_by").filter(
        token_hash=token_hash(secret), revoked_at=None).first()
    if token is not None and (token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60):
        # Coarse on purpose: one write a minute per token, not one per request.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
