"""Tools by name: description, JSON schema from a pydantic model (or, for tools that come with one such as MCP
tools, the schema itself), risk 0–4, timeout, retry policy, idempotency, cost. Results are normalized to
{status: ok, data} or {status: error, error_type, retryable, message}.

Built-in tools register with ``@tool`` (REGISTRY). Tools that belong to one tenant (its MCP servers' tools) come
from tool sources (``register_tool_source(fn(tenant) -> {name: Tool})``); ``tool_for(tenant, name)`` and
``tenant_tools(tenant)`` look in both, built-in first."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, ValidationError

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
    # The arguments' JSON schema when the tool comes with one (MCP): validated as JSON schema, passed on as a dict.
    input_schema: dict | None = None

    def json_schema(self) -> dict:
        return self.input_schema if self.input_schema is not None else _schema(self.arguments)


class JsonArguments(BaseModel):
    """Arguments validated against a tool's own JSON schema, passed on as they came."""

    model_config = ConfigDict(extra="allow")


@cache
def _schema(arguments: type[BaseModel]) -> dict:
    """Generated once per tool (it cost ~1 ms per step); callers must not modify it."""
    return arguments.model_json_schema()


REGISTRY: dict[str, Tool] = {}
ToolSource = Callable[[object], dict[str, Tool]]
TOOL_SOURCES: list[ToolSource] = []


def register_tool_source(source: ToolSource) -> ToolSource:
    """Another app's tenant tools: ``source(tenant)`` returns them by name (cheaply: steps ask every time).
    ``tenant`` is the tenant (with its config_version, as a step has it) or its id."""
    TOOL_SOURCES.append(source)
    return source


def tool_for(tenant, name: str) -> Tool | None:
    """The tool ``name`` as ``tenant`` has it: a built-in one, or one of its sources'."""
    if (spec := REGISTRY.get(name)) is not None:
        return spec
    for source in TOOL_SOURCES:
        if (spec := source(tenant).get(name)) is not None:
            return spec
    return None


def tenant_tools(tenant) -> dict[str, Tool]:
    tools = dict(REGISTRY)
    for source in TOOL_SOURCES:
        for name, spec in source(tenant).items():
            tools.setdefault(name, spec)
    return tools


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
    if spec.input_schema is not None:
        return _validated_by_schema(spec, raw)
    try:
        return spec.arguments.model_validate(raw)
    except ValidationError as exc:
        expected = ", ".join(f"{k}: {v.get('type', 'value')}" for k, v in spec.json_schema().get("properties", {}).items())
        return error("invalid_arguments",
                     f"The arguments for {spec.name} are not valid: {_describe_errors(exc)}. Expected {{{expected}}}.")
    except RecursionError:
        return error("invalid_arguments", "The arguments are nested too deeply.")


def _validated_by_schema(spec: Tool, raw: dict) -> BaseModel | dict:
    try:
        problems = sorted(Draft202012Validator(spec.input_schema).iter_errors(raw), key=lambda e: list(e.path))[:8]
    except SchemaError:
        return error("tool_unusable", f"{spec.name} declares arguments that cannot be checked; do not use it.")
    if problems:
        described = "; ".join(f"'{'.'.join(map(str, p.path)) or '(arguments)'}': {p.message}" for p in problems)
        expected = ", ".join(f"{k}: {v.get('type', 'value')}" for k, v in spec.input_schema.get("properties", {}).items())
        return error("invalid_arguments", f"The arguments for {spec.name} are not valid: {described}. "
                                          f"Expected {{{expected}}}.")
    return JsonArguments(**raw)


def run_tool(spec: Tool, context: ToolContext, arguments: BaseModel) -> dict:
    try:
        return ok(spec.function(context, arguments))
    except ToolError as exc:
        return error(exc.error_type, str(exc), retryable=exc.retryable)
