"""Writes for tenancy, audit and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from console.models import ALL_SCOPES, ApiToken, AuditEvent, Invitation, Membership, Role, Tenant

TOKEN_PREFIX = "prt_"


def audit_record(*, tenant: Tenant | int, actor, verb: str, target: str = "", data: dict | None = None) -> AuditEvent:
    """``tenant``: the tenant or its id (a caller holding only the id need not load the row)."""
    event = audit_event(tenant=tenant, actor=actor, verb=verb, target=target, data=data)
    event.save(force_insert=True)
    return event


def audit_event(*, tenant: Tenant | int, actor, verb: str, target: str = "", data: dict | None = None) -> AuditEvent:
    """The audit row, not saved: for a caller that writes it in its own statement with other rows (a
    decision writes it with its run's event). Otherwise use audit_record."""
    return AuditEvent(
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


# --- Members: invitations, removal; tenants -------------------------------------------------------------

INVITATION_DAYS = 7


class InvitationRefused(Exception):
    """An invitation that cannot be made or accepted (expired, used, revoked, unknown); the message says why."""


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    link: str  # the accept page with the token: emailed, shown to the admin once, never stored


def invitation_link(secret: str) -> str:
    return f"{settings.CONSOLE_URL}{reverse('invitation_accept', args=[secret])}"


def _invitation_mail(issued: IssuedInvitation) -> None:
    invitation = issued.invitation
    who = getattr(invitation.invited_by, "username", "") or "The platform operator"
    send_mail(f"You are invited to {invitation.tenant.name} on Proctor",
              f"{who} invites you to join {invitation.tenant.name} as {invitation.get_role_display().lower()}.\n\n"
              f"Accept (the link works once, until {invitation.expires_at:%Y-%m-%d %H:%M UTC}):\n{issued.link}\n",
              settings.DEFAULT_FROM_EMAIL, [invitation.email], fail_silently=True)


def invitation_create(*, tenant: Tenant, email: str, role: Role | str, actor, days: int = INVITATION_DAYS) -> IssuedInvitation:
    """Invite ``email`` with ``role``: a single-use link valid for ``days``, emailed after commit."""
    email, role = email.strip().lower(), Role(role)
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise InvitationRefused(f"{email} is already a member of {tenant.name}.")
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            tenant=tenant, email=email, role=role, token_hash=token_hash(secret),
            invited_by=actor if getattr(actor, "pk", None) else None,
            expires_at=timezone.now() + timedelta(days=days))
        audit_record(tenant=tenant, actor=actor, verb="invitation.created", target=email, data={"role": role.value})
        issued = IssuedInvitation(invitation=invitation, link=invitation_link(secret))
        transaction.on_commit(lambda: _invitation_mail(issued))
    return issued


def invitation_for_token(secret: str) -> Invitation | None:
    if not secret or len(secret) > 100:
        return None
    return Invitation.objects.select_related("tenant").filter(token_hash=token_hash(secret)).first()


def invitation_problem(invitation: Invitation | None) -> str:
    """Why the invitation cannot be accepted, or ""."""
    if invitation is None:
        return "This invitation link is not valid. Ask an admin of the tenant for a new one."
    state = invitation.state(timezone.now())
    return {"accepted": "This invitation has been used already; log in instead.",
            "revoked": "This invitation was withdrawn. Ask an admin of the tenant for a new one.",
            "expired": "This invitation has expired. Ask an admin of the tenant for a new one."}.get(state, "")


def invitation_accept(*, secret: str, user=None, username: str = "", password: str = ""):
    """Accept: ``user`` (an existing account, logged in) joins; otherwise a new account is made with
    ``username`` and ``password`` and the invitation's email. Single use, under the invitation's row lock.
    Returns the membership."""
    with transaction.atomic():
        found = invitation_for_token(secret)
        invitation = Invitation.objects.select_for_update().select_related("tenant").filter(
            pk=getattr(found, "pk", None)).first()
        if problem := invitation_problem(invitation):
            raise InvitationRefused(problem)
        if user is None:
            user = get_user_model().objects.create_user(username=username, email=invitation.email, password=password)
        membership, created = Membership.objects.get_or_create(
            user=user, tenant=invitation.tenant, defaults={"role": invitation.role})
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(tenant=invitation.tenant, actor=user, verb="invitation.accepted", target=invitation.email,
                     data={"role": membership.role, "joined": created})
    return membership


def invitation_revoke(*, invitation: Invitation, actor) -> None:
    with transaction.atomic():
        if Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
                revoked_at=timezone.now()):
            audit_record(tenant=invitation.tenant, actor=actor, verb="invitation.revoked", target=invitation.email)


@transaction.atomic
def membership_remove(*, membership: Membership, actor) -> None:
    """Remove a member from the tenant; never its last admin. Their API tokens of this tenant stop working."""
    locked = Membership.objects.select_for_update().select_related("user", "tenant").get(pk=membership.pk)
    if locked.role == Role.ADMIN:
        others = Membership.objects.for_tenant(locked.tenant).filter(role=Role.ADMIN).exclude(pk=locked.pk)
        if not others.select_for_update().exists():
            raise LastAdminError(f"{locked.user.username} is the last admin of {locked.tenant.name}; make someone "
                                 f"else admin first.")
    ApiToken.objects.for_tenant(locked.tenant).filter(created_by=locked.user, revoked_at=None).update(
        revoked_at=timezone.now())
    locked.delete()
    audit_record(tenant=locked.tenant, actor=actor, verb="membership.removed", target=locked.user.username,
                 data={"role": locked.role})


def tenant_create(*, name: str, slug: str, admin_email: str, actor=None) -> tuple[Tenant, Membership | None,
                                                                                   IssuedInvitation | None]:
    """The platform operator's: a tenant with its first admin — an existing account (by email) becomes admin
    at once; otherwise an admin invitation is made (its link emailed and returned)."""
    with transaction.atomic():
        tenant = Tenant.objects.create(name=name.strip(), slug=slug.strip())
        audit_record(tenant=tenant, actor=actor, verb="tenant.created", target=tenant.slug)
        existing = get_user_model().objects.filter(email__iexact=admin_email.strip()).order_by("pk").first()
        if existing is not None:
            membership = Membership.objects.create(user=existing, tenant=tenant, role=Role.ADMIN)
            audit_record(tenant=tenant, actor=actor, verb="membership.added", target=existing.username,
                         data={"role": Role.ADMIN.value})
            return tenant, membership, None
        return tenant, None, invitation_create(tenant=tenant, email=admin_email, role=Role.ADMIN, actor=actor)
