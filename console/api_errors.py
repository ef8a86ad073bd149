"""The API's errors: one JSON shape, {code, message}, a code per status (and a few more specific ones), and the
error statuses every operation documents in the OpenAPI schema. The routers (agents.api, approvals.api) declare
theirs with ``errors(...)``; console.api turns exceptions into these answers, and console.middleware turns
any other error under /api/ (an unknown path, a method not allowed, a crash outside an operation) into one."""

from __future__ import annotations

from ninja import Field, Schema
from ninja.errors import HttpError

# The code of an error by its status, unless the error names a more specific one (idempotency_mismatch,
# invalid_arguments, needs_more_approvals).
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid",
    429: "too_many_requests",
    500: "server_error",
    503: "unavailable",
}

# What any operation may answer: an unreadable request (a NUL character, malformed or too deeply nested JSON,
# NaN), no valid token, a token without the scope or role the operation needs (console.api_auth), a body over
# the size limit, a parameter that is not valid, our failure.
COMMON = (400, 401, 403, 413, 422, 500)


class Error(Schema):
    code: str = Field(description="What went wrong, for programs: " + ", ".join(sorted(
        {*CODES.values(), "idempotency_mismatch", "invalid_arguments", "needs_more_approvals", "missing_scope"})))
    message: str = Field(description="What went wrong, for people")
    errors: list[dict] | None = Field(default=None, description="With code invalid: each field's problem")
    scope: str | None = Field(default=None, description="With code missing_scope: the scope the token lacks")


class ApiError(HttpError):
    """An error with its own code (the status's otherwise)."""

    def __init__(self, status: int, message: str, *, code: str | None = None):
        super().__init__(status, message)
        self.code = code or CODES.get(status, "error")


def code_for(status: int) -> str:
    return CODES.get(status, "error")


def errors(*statuses: int) -> dict[int, type[Error]]:
    """An operation's error statuses for its ``response=``: these and the COMMON ones."""
    return {status: Error for status in sorted({*COMMON, *statuses})}
