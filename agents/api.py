"""Run lifecycle over the API: the same services as the console. A token acts as the person who created it:
they are the run's requester (so a policy's "the requester may not approve" holds for API runs) and the
one who pauses, cancels or instructs it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import Http404
from ninja import Field, Header, Router, Schema, Status
from pydantic import StrictBool, model_validator
from ninja.errors import HttpError

from agents import services
from agents.models import Agent, Run
from agents.selectors import agent_version_history, run_events_after, run_list, run_row, tool_catalog
from agents.tool_settings import RiskRefused, tool_risk_set
from agents.tools import tool_for
from console.api_auth import token_scopes
from console.api_errors import ApiError, errors

router = Router(tags=["runs"], auth=token_scopes(read="runs:read", write="runs:write", section="runs"))


class RunIn(Schema):
    agent: str = Field(description="The agent's slug", max_length=60, examples=["renewals"])
    goal: str = Field(max_length=services.MAX_GOAL_CHARS,
                      examples=["Prepare the renewal plan for account ACME-042 and email it to its success manager"])
    version: int | None = Field(default=None, ge=1, le=1_000_000,
                                description="An earlier version of the agent to run (its current one when omitted)")


class RunOut(Schema):
    number: int = Field(description="The run's number in the tenant: what the run paths take")
    agent: str
    agent_version: int
    goal: str
    status: str
    step: int
    last_action: str
    next_action: str
    terminal_reason: str
    answer: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    trace_id: str
    created_at: datetime
    finished_at: datetime | None

    @staticmethod
    def resolve_agent(run: Run) -> str:
        return run.agent.slug


class EventOut(Schema):
    seq: int
    type: str
    payload: dict
    at: datetime


class MessageIn(Schema):
    text: str = Field(max_length=services.MAX_INSTRUCTION_CHARS)


def _run(request, number: int) -> Run:
    run = run_row(tenant=request.tenant, number=number)
    if run is None:
        raise Http404
    return run


@router.post("/runs", response={201: RunOut, 200: RunOut, **errors()},
             summary="Start a run (Idempotency-Key header supported)",
             description="201 with the new run. With an `Idempotency-Key` used before: 200 with that run when the "
                         "agent and goal are the same, 422 `idempotency_mismatch` when they are not.")
def create_run(request, body: RunIn, idempotency_key: str = Header(
        "", alias="Idempotency-Key", max_length=200, description="Send the same key again to get the same run")):
    agent = Agent.objects.for_tenant(request.tenant).filter(slug=body.agent).first()
    if agent is None:
        raise HttpError(422, f"No agent '{body.agent}' in this tenant.")
    try:
        run, created = services.run_start_once(tenant=request.tenant, agent=agent, goal=body.goal,
                                               requested_by=request.api_token.created_by,
                                               idempotency_key=idempotency_key or None, version=body.version)
    except services.IdempotencyMismatch as error:
        raise ApiError(422, str(error), code="idempotency_mismatch") from None
    except services.RunError as error:
        raise HttpError(422, str(error)) from None
    return Status(201 if created else 200, run)


@router.get("/runs", response={200: list[RunOut], **errors()}, summary="Recent runs, newest first")
def list_runs(request, status: str = "", limit: int = 50):
    return run_list(tenant=request.tenant, status=status[:24], limit=max(1, min(limit, 200)))


@router.get("/runs/{number}", response={200: RunOut, **errors(404)})
def get_run(request, number: int):
    return _run(request, number)


@router.get("/runs/{number}/events", response={200: list[EventOut], **errors(404)},
            summary="Events after a sequence number")
def run_events(request, number: int, after: int = 0, limit: int = 500):
    return run_events_after(run=_run(request, number), after=max(0, after), limit=max(1, min(limit, 1000)))


def _control(request, number: int, service):
    try:
        return service(run=_run(request, number), actor=request.api_token.created_by)
    except services.RunError as error:
        raise HttpError(409, str(error)) from None


@router.post("/runs/{number}/cancel", response={200: RunOut, **errors(404, 409)})
def cancel_run(request, number: int):
    return _control(request, number, services.run_cancel)


@router.post("/runs/{number}/pause", response={200: RunOut, **errors(404, 409)})
def pause_run(request, number: int):
    return _control(request, number, services.run_pause)


@router.post("/runs/{number}/resume", response={200: RunOut, **errors(404, 409)})
def resume_run(request, number: int):
    return _control(request, number, services.run_resume)


@router.post("/runs/{number}/messages", response={200: RunOut, **errors(404)},
             summary="Add an instruction the next step will see")
def add_message(request, number: int, body: MessageIn):
    try:
        return services.run_add_instruction(run=_run(request, number), actor=request.api_token.created_by,
                                            text=body.text)
    except services.RunError as error:
        raise HttpError(422, str(error)) from None


# --- Agents: everyone with runs:read reads them; admins (admin scope and role) create and change them -------

agents_router = Router(tags=["agents"], auth=token_scopes(read="runs:read", write="admin", section="agents"))
ADMIN_ONLY = token_scopes("admin", section="admin")


class MemorySettings(Schema):
    recall: StrictBool = False
    remember: StrictBool = False


class AgentOut(Schema):
    slug: str
    name: str
    description: str
    enabled: bool
    version: int
    instructions: str
    model: str
    fallback_models: list[str]
    tools: list[str]
    max_steps: int
    max_tokens: int
    max_cost_usd: Decimal
    max_seconds: int
    plan_mode: bool
    plan_approval: bool
    memory: MemorySettings


class AgentVersionOut(Schema):
    version: int
    created_by: str | None
    created_at: datetime
    instructions: str
    config: dict
    run_count: int



class AgentChange(Schema):
    """Only the fields given change; a change to what the agent does makes a new version."""

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data):
        if not isinstance(getattr(data, "_obj", data), dict):  # ninja hands its getter around the body
            raise ValueError("Send a JSON object of the fields to change.")
        return data

    name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=300)
    instructions: str | None = Field(default=None, max_length=50_000)
    model: str | None = Field(default=None, max_length=100, examples=["demo:planner"])
    fallback_models: list[str] | None = Field(default=None, max_length=5)
    tools: list[str] | None = Field(default=None, max_length=200)
    max_steps: int | None = None
    max_tokens: int | None = None
    max_cost_usd: Decimal | None = Field(default=None, max_digits=10, decimal_places=4)
    max_seconds: int | None = None
    plan_mode: StrictBool | None = None
    plan_approval: StrictBool | None = None
    memory: MemorySettings | None = None


class AgentIn(AgentChange):
    name: str = Field(max_length=100)
    slug: str = Field(default="", max_length=60, description="From the name when empty")
    instructions: str = Field(max_length=50_000)
    model: str = Field(default="demo:planner", max_length=100)


def _agent(request, slug: str) -> Agent:
    agent = Agent.objects.for_tenant(request.tenant).filter(slug=slug).first()
    if agent is None:
        raise Http404
    return agent


def _given(body: Schema) -> dict:
    values = body.dict(exclude_none=True)
    if isinstance(values.get("memory"), dict):
        values["memory"] = dict(values["memory"])
    return values


@agents_router.get("/agents", response={200: list[AgentOut], **errors()}, summary="The tenant's agents")
def list_agents(request):
    return Agent.objects.for_tenant(request.tenant).order_by("name")


@agents_router.get("/agents/{slug}", response={200: AgentOut, **errors(404)})
def get_agent(request, slug: str):
    return _agent(request, slug)


@agents_router.get("/agents/{slug}/versions", response={200: list[AgentVersionOut], **errors(404)},
                   summary="Every version, newest first, with how many runs used it")
def agent_versions(request, slug: str):
    history = agent_version_history(agent=_agent(request, slug), runs_per_version=0)
    return [{"version": row.version, "created_at": row.created_at, "run_count": item["run_count"],
             "created_by": row.created_by.username if row.created_by else None,
             "instructions": row.instructions, "config": row.config}
            for item in history for row in [item["version"]]]


@agents_router.post("/agents", response={201: AgentOut, **errors()}, auth=ADMIN_ONLY, summary="Create an agent")
def create_agent(request, body: AgentIn):
    values = _given(body)
    try:
        agent = services.agent_create(tenant=request.tenant, actor=request.api_token.created_by,
                                      name=values.pop("name"), slug=values.pop("slug", ""), **values)
    except services.RunError as error:
        raise HttpError(422, str(error)) from None
    return Status(201, agent)


@agents_router.patch("/agents/{slug}", response={200: AgentOut, **errors(404)}, auth=ADMIN_ONLY,
                     summary="Change an agent (a new version when what it does changes)")
def change_agent(request, slug: str, body: AgentChange):
    try:
        return services.agent_update(agent=_agent(request, slug), actor=request.api_token.created_by, **_given(body))
    except services.RunError as error:
        raise HttpError(422, str(error)) from None


class EnabledIn(Schema):
    enabled: StrictBool


@agents_router.put("/agents/{slug}/enabled", response={200: AgentOut, **errors(404)}, auth=ADMIN_ONLY,
                   summary="Disable (no new runs) or enable an agent")
def set_enabled(request, slug: str, body: EnabledIn):
    return services.agent_set_enabled(agent=_agent(request, slug), enabled=body.enabled,
                                      actor=request.api_token.created_by)


# --- Tools (admins): the registry with each tool's governance, schema, agents and use; raising a risk -----

tools_router = Router(tags=["tools"], auth=ADMIN_ONLY)


class ToolUse(Schema):
    calls: int
    errors: int
    p50_ms: int | None


class ToolOut(Schema):
    name: str
    description: str
    declared_risk: int = Field(description="The tool's own risk: the floor")
    risk: int = Field(description="Its risk in this tenant (declared, or raised by an admin)")
    timeout_seconds: float
    max_retries: int
    idempotent: bool
    cost_usd: Decimal
    arguments_schema: dict = Field(description="The JSON schema of its arguments")
    agents: list[str] = Field(description="Slugs of the tenant's agents that may use it")
    usage: ToolUse


class RiskIn(Schema):
    risk: int = Field(ge=0, le=4)


def _tool_out(item: dict) -> dict:
    spec = item["spec"]
    return {"name": spec.name, "description": spec.description, "declared_risk": spec.risk, "risk": item["risk"],
            "timeout_seconds": spec.timeout_seconds, "max_retries": spec.max_retries, "idempotent": spec.idempotent,
            "cost_usd": spec.cost_usd, "arguments_schema": item["schema"], "agents": [a.slug for a in item["agents"]],
            "usage": item["usage"]}


@tools_router.get("/tools", response={200: list[ToolOut], **errors()}, summary="The tool registry, as this tenant has it")
def list_tools(request):
    return [_tool_out(item) for item in tool_catalog(tenant=request.tenant)]


@tools_router.put("/tools/{name}/risk", response={200: ToolOut, **errors(404)},
                  summary="Set a tool's risk in this tenant: never below its declared risk (422)")
def set_tool_risk(request, name: str, body: RiskIn):
    spec = tool_for(request.tenant, name)
    if spec is None:
        raise Http404
    try:
        tool_risk_set(tenant=request.tenant, spec=spec, risk=body.risk, actor=request.api_token.created_by)
    except RiskRefused as error:
        raise HttpError(422, str(error)) from None
    return next(_tool_out(item) for item in tool_catalog(tenant=request.tenant) if item["spec"].name == name)
