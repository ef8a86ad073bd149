"""The REST API root (/api/v1): django-ninja, tenant API tokens, errors as JSON {code, message}
(console/api_errors.py: the codes, and the statuses each operation documents)."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from ninja import Field, NinjaAPI, Schema, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from agents.api import agents_router, tools_router
from agents.api import router as runs_router
from approvals.api import router as approvals_router
from approvals.services import REFUSAL_STATUS, DecisionRefused
from console.admin_api import router as admin_router
from console.api_auth import MissingScope, token_scopes
from console.api_errors import code_for, errors
from console.input import InputRefused, json_load
from memory.api import router as memories_router
from costs.api import router as costs_router
from traces.api import router as traces_router
from mcp_servers.api import router as mcp_router
from webhooks.api import router as webhooks_router


class StrictJSON(Parser):
    """Bodies read as console.input reads JSON (InputCleaningMiddleware has refused what it refuses already)."""

    def parse_body(self, request):
        return json_load(request.body, where="The request body")


class SwaggerFromStatic(Swagger):
    """/api/v1/docs: Swagger UI from static/vendor/swagger-ui, started by static/js/api_docs.js with the settings the
    page carries as JSON. Ninja's own page takes it from a CDN with an inline script, which the CSP blocks."""

    template = "api/docs.html"

    def render_page(self, request, api, **kwargs):
        settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        return render(request, self.template, {"api": api, "swagger_settings": settings})


api = NinjaAPI(
    title="Proctor API",
    version="1",
    description="Runs, approvals, traces, memory and costs of one tenant. Authenticate with `Authorization: Bearer <token>`.",
    # Routers and operations declare the scope they need (console/api_auth.py); one that declares nothing
    # needs an admin token: closed, never open.
    auth=token_scopes("admin", section="admin"),
    urls_namespace="api",
    parser=StrictJSON(),
    # No validator badge: it would load an image from the validator's site.
    docs=SwaggerFromStatic(settings={"validatorUrl": None, "tryItOutEnabled": False}),
)
api.add_router("/", runs_router)
api.add_router("/", agents_router)
api.add_router("/", tools_router)
api.add_router("/", approvals_router)
api.add_router("/", admin_router)
api.add_router("/", webhooks_router)
api.add_router("/", traces_router)
api.add_router("/", costs_router)
api.add_router("/", mcp_router)
api.add_router("/", memories_router)


log = logging.getLogger("proctor.api")


def _error(request, status: int, code: str, message: str, **extra):
    return api.create_response(request, {"code": code, "message": message, **extra}, status=status)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    return _error(request, 422, "invalid", "The request is not valid: see errors.", errors=exc.errors)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request, exc):
    return _error(request, 401, "unauthenticated", "Send a valid, unrevoked API token as 'Authorization: Bearer <token>'.")


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, "not_found", "Not found.")


@api.exception_handler(MissingScope)
def on_missing_scope(request, exc: MissingScope):
    return _error(request, 403, "missing_scope", str(exc), scope=exc.scope)


@api.exception_handler(PermissionDenied)
def on_forbidden(request, exc):
    return _error(request, 403, "forbidden", str(exc) or "This token may not do that.")


@api.exception_handler(DecisionRefused)
def on_decision_refused(request, exc: DecisionRefused):
    code = "invalid_arguments" if exc.kind == "invalid" else exc.kind
    return _error(request, REFUSAL_STATUS[exc.kind], code, str(exc))


@api.exception_handler(InputRefused)
def on_input_refused(request, exc: InputRefused):
    return _error(request, exc.status, exc.code, str(exc))


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return _error(request, exc.status_code, getattr(exc, "code", None) or code_for(exc.status_code), str(exc))


@api.exception_handler(Exception)
def on_crash(request, exc: Exception):
    """Our failure: the traceback goes to the server's log only, DEBUG or not; the client gets JSON."""
    log.error("API error: %s %s", request.method, request.path, exc_info=exc)
    response = _error(request, 500, "server_error", "Something went wrong on our side; it was logged. Try again in "
                                                    "a moment.")
    response._has_been_logged = True  # Django's request log would say it again, without the traceback
    return response


class WhoAmI(Schema):
    tenant: str
    tenant_name: str
    token_name: str
    scopes: list[str]
    user: str | None = Field(description="The person the token acts as: the one who made it")


@api.get("/whoami", response={200: WhoAmI, **errors()}, auth=token_scopes(),
         summary="The tenant, token, scopes and person this request authenticates as (any valid token)")
def whoami(request):
    token = request.api_token
    return WhoAmI(tenant=request.tenant.slug, tenant_name=request.tenant.name, token_name=token.name,
                  scopes=token.scopes, user=token.created_by.username if token.created_by else None)
