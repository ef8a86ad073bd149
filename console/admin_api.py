"""The tenant's administration over the API: tokens (members and invitations join here). Every operation
needs a token with the ``admin`` scope made by an admin of the tenant, and goes through the same services as
the admin pages."""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from console.api_auth import token_scopes
from console.api_errors import errors
from console.models import ALL_SCOPES, ApiToken
from console.selectors import api_token_list
from console.services import TokenRefused, api_token_create, api_token_revoke

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
