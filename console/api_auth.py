"""How an API operation says who may call it: a tenant token with the scope it needs, made by a person whose
current role opens the section. Declared once per router (or per operation) and checked before the operation
runs, so no endpoint can forget it:

    router = Router(tags=["memory"], auth=token_scopes(read="runs:read", write="memory:write", section="memory"))
    @router.post("/things", auth=token_scopes("admin", section="admin"))  # one operation's own requirement

``read`` applies to GET/HEAD/OPTIONS, ``write`` to every other method (one scope given: both). A token
without the scope gets 403 ``missing_scope`` naming it; a token whose maker's role may not open the section,
or who left the tenant, gets 403 too. The API's default (console/api.py) is ``admin``: a router that declares
nothing is closed to every token but an admin one, never open to all.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja.security import HttpBearer

from console.access import member_access
from console.models import ALL_SCOPES, ApiToken
from console.services import api_token_authenticate

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class MissingScope(PermissionDenied):
    """403 missing_scope: the token was not made with the scope this operation needs."""

    def __init__(self, scope: str, token: ApiToken):
        self.scope = scope
        super().__init__(f"This token lacks the scope '{scope}' (it has: {', '.join(token.scopes) or 'none'}). "
                         f"Make a token with '{scope}' on the API tokens page.")


class TokenAuth(HttpBearer):
    """Bearer tenant token (prt_…) with the scope this operation needs; sets request.tenant and request.api_token.
    A token acts as the person who made it, with their current role."""

    openapi_scheme = "bearer"

    def __init__(self, *, read: str | None, write: str | None, section: str | None = None):
        for scope in (read, write):
            if scope is not None and scope not in ALL_SCOPES:
                raise ValueError(f"unknown scope {scope!r}; scopes: {', '.join(ALL_SCOPES)}")
        self.read, self.write, self.section = read, write, section
        super().__init__()

    def needed_scope(self, method: str) -> str | None:
        return self.read if method.upper() in READ_METHODS else self.write

    def authenticate(self, request, token: str):
        api_token = api_token_authenticate(token)
        if api_token is None:
            return None
        request.tenant = api_token.tenant
        request.api_token = api_token
        needed = self.needed_scope(request.method)
        if needed is not None and needed not in api_token.scopes:
            raise MissingScope(needed, api_token)
        if self.section is not None:
            try:
                request.membership = member_access(api_token.created_by, tenant=api_token.tenant, section=self.section)
            except Http404:
                raise PermissionDenied(f"The person who made this token is no longer a member of "
                                       f"{api_token.tenant.name}; make a new token.") from None
        return api_token


def token_scopes(scope: str | None = None, *, read: str | None = None, write: str | None = None,
                 section: str | None = None) -> TokenAuth:
    """The requirement of a router or operation: ``token_scopes("admin")`` or ``token_scopes(read=…, write=…)``;
    ``section`` adds the role check of console.roles for the token's maker. ``token_scopes()``: any valid token."""
    return TokenAuth(read=read or scope, write=write or scope, section=section)
