"""Tools by name: description, JSON schema from a pydantic model, risk 0–4, timeout,
retry policy, idempotency, cost. Results are normalized to
{status: ok, data} or {status: error, error_type, retryable, message}."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from pydantic import BaseModel, ValidationError

MAX_ARGUMENT_BYTES = 64_000


class ToolError(Exception):
    """Raised by a tool; the message goes back to the model, so write it for the model."""

    def __init__(self, message: str, *, retryable: bool = False, error_type: str = "tool_error"):
        super().__init__(message)
        self.retryable = retryable
        self.error_type = error_type


@dataclass(frozen=True)
class ToolContext:
    tenant: object
    run: object
    idempotency_key: str


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[BaseModel]
    risk: int  # 0 read, 1 local write, 2 external draft, 3 external side effect, 4 high risk
    function: Callable[[ToolContext, BaseModel], dict]
    timeout_seconds: float = 10.0
    max_retries: int = 0
    idempotent: bool = False
    cost_usd: Decimal = Decimal("0")
    # Its effects are rows in our own database only (no call out): it can run inside the step's
    # transaction, and a crash rolls its effects back with the step.
    transactional: bool = False
    # A template that shows the arguments as a person reads them (an email as To / Subject / body), given
    # ``arguments``; the console shows it above the JSON when a call is reviewed or shown. Empty: JSON only.
    preview: str = ""

    def json_schema(self) -> dict:
        return _schema(self.arguments)


@cache
def _schema(arguments: type[BaseModel]) -> dict:
    """Generated once per tool (it cost ~1 ms per step); callers must not modify it."""
    return arguments.model_json_schema()


REGISTRY: dict[str, Tool] = {}


def tool(name: str, *, description: str, risk: int, **options) -> Callable:
    def register(function: Callable) -> Callable:
        arguments = function.__annotations__["args"]
        if isinstance(arguments, str):  # postponed annotations
            arguments = function.__globals__[arguments]
        REGISTRY[name] = Tool(name=name, description=description, arguments=arguments, risk=risk,
                              function=function, **options)
        return function

    return register


def ok(data) -> dict:
    return {"status": "ok", "data": data}


def error(error_type: str, message: str, *, retryable: bool = False) -> dict:
    return {"status": "error", "error_type": error_type, "retryable": retryable, "message": message}


def _describe_errors(exc: ValidationError) -> str:
    parts = []
    for item in exc.errors()[:8]:
        where = ".".join(str(p) for p in item["loc"]) or "(arguments)"
        parts.append(f"'{where}': {item['msg']}")
    return "; ".join(parts)


def parse_arguments(spec: Tool, raw) -> BaseModel | dict:
    """The validated arguments, or a normalized error the model can act on."""
    if isinstance(raw, str):
        if len(raw.encode()) > MAX_ARGUMENT_BYTES:
            return error("invalid_arguments", f"The arguments are {len(raw)} characters; the limit is {MAX_ARGUMENT_BYTES}.")
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            return error("invalid_arguments", f"The arguments are not valid JSON ({exc.msg} at position {exc.pos}). "
                                              "Send a JSON object.")
    if not isinstance(raw, dict):
        return error("invalid_arguments", "The arguments must be a JSON object.")
    if "\x00" in json.dumps(raw):
        return error("invalid_arguments", "The arguments contain NUL characters; remove them.")
    try:
        return spec.arguments.model_validate(raw)
    except ValidationError as exc:
        expected = ", ".join(f"{k}: {v.get('type', 'value')}" for k, v in spec.json_schema().get("properties", {}).items())
        return error("invalid_arguments",
                     f"The arguments for {spec.name} are not valid: {_describe_errors(exc)}. Expected {{{expected}}}.")
    except RecursionError:
        return error("invalid_arguments", "The arguments are nested too deeply.")


def run_tool(spec: Tool, context: ToolContext, arguments: BaseModel) -> dict:
    try:
        return ok(spec.function(context, arguments))
    except ToolError as exc:
        return error(exc.error_type, str(exc), retryable=exc.retryable)
