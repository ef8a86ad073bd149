"""The REST API root (/api/v1): django-ninja, tenant API tokens, errors as JSON {code, message}."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from agents.api import router as runs_router
from approvals.api import router as approvals_router
from approvals.services import REFUSAL_STATUS, DecisionRefused
from console.services import api_token_authenticate


class TenantTokenAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request, token: str):
        api_token = api_token_authenticate(token)
        if api_token is None:
            return None
        request.tenant = api_token.tenant
        request.api_token = api_token
        return api_token


api = NinjaAPI(
    title="Proctor API",
    version="1",
    description="Runs, approvals, memory and costs of one tenant. Authenticate with `Authorization: Bearer <token>`.",
    auth=TenantTokenAuth(),
    urls_namespace="api",
)
api.add_router("/", runs_router)
api.add_router("/", approvals_router)


def _error(request, status: int, code: str, message: str, **extra):
    return api.create_response(request, {"code": code, "message": message, **extra}, status=status)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    return _error(request, 422, "invalid_input", "The request is not valid.", errors=exc.errors)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request, exc):
    return _error(request, 401, "unauthenticated", "Send a valid, unrevoked API token as 'Authorization: Bearer <token>'.")


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, "not_found", "Not found.")


@api.exception_handler(PermissionDenied)
def on_forbidden(request, exc):
    return _error(request, 403, "forbidden", str(exc) or "This token may not do that.")


@api.exception_handler(DecisionRefused)
def on_decision_refused(request, exc: DecisionRefused):
    code = "invalid_arguments" if exc.kind == "invalid" else exc.kind
    return _error(request, REFUSAL_STATUS[exc.kind], code, str(exc))


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return _error(request, exc.status_code, "error", str(exc))


class WhoAmI(Schema):
    tenant: str
    tenant_name: str
    token_name: str


@api.get("/whoami", response=WhoAmI, summary="The tenant and token this request authenticates as")
def whoami(request):
    return WhoAmI(tenant=request.tenant.slug, tenant_name=request.tenant.name, token_name=request.api_token.name)
