"""The tenant's administration over the API: tokens, members, invitations. Every operation
needs a token with the ``admin`` scope made by an admin of the tenant, and goes through the same services as
the admin pages."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import Http404
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from console.api_auth import token_scopes
from console.api_errors import errors
from console.models import ALL_SCOPES, ApiToken, Invitation, Membership, Role
from console.selectors import api_token_list, invitation_list, member_list
from console.services import (
    InvitationRefused,
    LastAdminError,
    TokenRefused,
    api_token_create,
    api_token_revoke,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
)

router = Router(tags=["admin"], auth=token_scopes("admin", section="admin"))


class TokenOut(Schema):
    id: int
    name: str
    prefix: str = Field(description="The secret's first characters, to tell tokens apart")
    scopes: list[str]
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @staticmethod
    def resolve_created_by(token: ApiToken) -> str | None:
        return token.created_by.username if token.created_by else None


class TokenIn(Schema):
    name: str = Field(max_length=100, examples=["CI pipeline"])
    scopes: list[str] = Field(description="Any of: " + ", ".join(ALL_SCOPES) + ". No more than the asking token has.",
                              examples=[["runs:read", "runs:write"]], max_length=len(ALL_SCOPES) * 2)


class IssuedTokenOut(TokenOut):
    secret: str = Field(description="The token itself: shown this once, never again")


@router.get("/tokens", response={200: list[TokenOut], **errors()}, summary="The tenant's API tokens")
def list_tokens(request):
    return api_token_list(tenant=request.tenant)


@router.post("/tokens", response={201: IssuedTokenOut, **errors()},
             summary="Make a token with the scopes given (acting as this token's person); the secret is shown once")
def create_token(request, body: TokenIn):
    try:
        issued = api_token_create(tenant=request.tenant, name=body.name, actor=request.api_token.created_by,
                                  scopes=body.scopes, within=request.api_token.scopes)
    except TokenRefused as error:
        raise HttpError(422, str(error)) from None
    issued.token.secret = issued.secret  # on the answer only; the row keeps its hash
    return Status(201, issued.token)


@router.delete("/tokens/{token_id}", response={200: TokenOut, **errors(404)}, summary="Revoke a token")
def revoke_token(request, token_id: int):
    token = ApiToken.objects.for_tenant(request.tenant).select_related("created_by").filter(pk=token_id).first()
    if token is None:
        raise Http404
    return api_token_revoke(token=token, actor=request.api_token.created_by)


RoleName = Literal["admin", "reviewer", "finance", "member"]


class MemberOut(Schema):
    id: int
    username: str
    email: str
    role: str
    created_at: datetime

    @staticmethod
    def resolve_username(membership: Membership) -> str:
        return membership.user.username

    @staticmethod
    def resolve_email(membership: Membership) -> str:
        return membership.user.email


class RoleIn(Schema):
    role: RoleName


class InvitationIn(Schema):
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["kim@acme.example"])
    role: RoleName = "member"


class InvitationOut(Schema):
    id: int
    email: str
    role: str
    invited_by: str | None
    created_at: datetime
    expires_at: datetime

    @staticmethod
    def resolve_invited_by(invitation: Invitation) -> str | None:
        return invitation.invited_by.username if invitation.invited_by else None


class IssuedInvitationOut(InvitationOut):
    link: str = Field(description="The accept link: emailed, and returned this once")


def _member(request, membership_id: int) -> Membership:
    found = Membership.objects.for_tenant(request.tenant).select_related("user").filter(pk=membership_id).first()
    if found is None:
        raise Http404
    return found


@router.get("/members", response={200: list[MemberOut], **errors()}, summary="The tenant's members and roles")
def list_members(request):
    return member_list(tenant=request.tenant)


@router.put("/members/{membership_id}/role", response={200: MemberOut, **errors(404, 409)},
            summary="Change a member's role (409 for the last admin)")
def change_role(request, membership_id: int, body: RoleIn):
    try:
        membership_change_role(membership=_member(request, membership_id), role=body.role,
                               actor=request.api_token.created_by)
    except LastAdminError as error:
        raise HttpError(409, str(error)) from None
    return _member(request, membership_id)


@router.delete("/members/{membership_id}", response={204: None, **errors(404, 409)},
               summary="Remove a member (409 for the last admin); their tokens here are revoked")
def remove_member(request, membership_id: int):
    try:
        membership_remove(membership=_member(request, membership_id), actor=request.api_token.created_by)
    except LastAdminError as error:
        raise HttpError(409, str(error)) from None
    return Status(204, None)


@router.get("/invitations", response={200: list[InvitationOut], **errors()}, summary="Open invitations")
def list_invitations(request):
    return invitation_list(tenant=request.tenant)


@router.post("/invitations", response={201: IssuedInvitationOut, **errors(409)},
             summary="Invite someone by email with a role: a single-use link, valid 7 days (emailed)")
def invite(request, body: InvitationIn):
    try:
        issued = invitation_create(tenant=request.tenant, email=body.email, role=Role(body.role),
                                   actor=request.api_token.created_by)
    except InvitationRefused as error:
        raise HttpError(409, str(error)) from None
    issued.invitation.link = issued.link
    return Status(201, issued.invitation)


@router.delete("/invitations/{invitation_id}", response={204: None, **errors(404)},
               summary="Withdraw an invitation: its link stops working")
def withdraw_invitation(request, invitation_id: int):
    invitation = Invitation.objects.for_tenant(request.tenant).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404
    invitation_revoke(invitation=invitation, actor=request.api_token.created_by)
    return Status(204, None)
