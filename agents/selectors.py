"""Reads for runs and events."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from agents.models import AgentVersion, PlanStep, Run, RunEvent
from agents.run_store import events_between, plan_steps, run_requests_attach, run_shown

EVENTS_PAGE = 500


def _runs(tenant) -> QuerySet[Run]:
    # Everything a run row, the run card and the run page read, in the same query.
    return Run.objects.for_tenant(tenant).select_related("agent", "tenant", "requested_by", "control_by")


def pin_agent_version(run: Run) -> Run:
    """A run works with, and is shown with, the agent as it was when the run started: an edit since (a
    new version) applies to new runs only. Sets the run's agent, in memory, to its version's snapshot."""
    if run.agent.version != run.agent_version and (snapshot := AgentVersion.objects.filter(
            agent_id=run.agent_id, version=run.agent_version).first()):
        run.agent.instructions, run.agent.version = snapshot.instructions, snapshot.version
        for name, value in snapshot.config.items():
            setattr(run.agent, name, Decimal(value) if name == "max_cost_usd" else value)
    return run


def run_list(*, tenant, status: str = "", limit: int = 100) -> list[Run]:
    runs = _runs(tenant).order_by("-created_at", "-id")
    if status:
        runs = runs.filter(status=status)
    return list(runs[:limit])


def _one(runs: QuerySet[Run], run_id: int | None, number: int | None) -> QuerySet[Run]:
    return runs.filter(pk=run_id) if run_id is not None else runs.filter(number=number)


RUNS_PAGE = 50
RUN_FILTERS = ("q", "status", "agent", "requester")


def run_filters(params) -> dict:
    """The runs list's search and filters from a query string (the page's and its socket's)."""
    return {"q": params.get("q", "").strip()[:200], "status": params.get("status", "")[:24],
            "agent": params.get("agent", "")[:60], "requester": params.get("requester", "")[:150]}


def _filtered(runs: QuerySet[Run], filters: dict) -> QuerySet[Run]:
    if filters.get("q"):
        runs = runs.filter(goal__icontains=filters["q"])
    if filters.get("status"):
        runs = runs.filter(status=filters["status"])
    if filters.get("agent"):
        runs = runs.filter(agent__slug=filters["agent"])
    if filters.get("requester"):
        runs = runs.filter(requested_by__username=filters["requester"])
    return runs


def run_page(*, tenant, filters: dict, before: int | None = None) -> tuple[list[Run], int | None]:
    """A page of the runs list, newest first: keyset on the run's number (as fast on page 1,000 as on
    page 1). The next page's cursor, or None at the end."""
    runs = _filtered(_runs(tenant), filters).order_by("-number")
    if before:
        runs = runs.filter(number__lt=before)
    rows = list(runs[:RUNS_PAGE + 1])
    return rows[:RUNS_PAGE], rows[RUNS_PAGE - 1].number if len(rows) > RUNS_PAGE else None


def run_get(*, tenant, run_id: int | None = None, number: int | None = None) -> Run:
    """By id, or by the run's number in the tenant (what pages, sockets and the API name).
    Raises Run.DoesNotExist for a run of another tenant as for a missing one.
    Comes with its approvals, who decided them and the call that ran, as the run card shows."""
    # Prepared statements, not the ORM: a run socket reads this for every frame it renders (bench p3).
    run = run_shown(tenant_id=tenant.pk, run_id=run_id, number=number)
    if run is None:
        raise Run.DoesNotExist("no such run in this tenant")
    return pin_agent_version(run_requests_attach(run))


def run_row(*, tenant, run_id: int | None = None, number: int | None = None, filters: dict | None = None) -> Run | None:
    """The run as a list row needs it (no approvals), by id or number, or None outside the tenant (or,
    with a runs list's ``filters``, when it does not belong in that list)."""
    run = _one(_filtered(_runs(tenant), filters or {}), run_id, number).first()
    return pin_agent_version(run) if run else None


def run_event_seq(*, tenant, run_id: int) -> int:
    """The run's last event seq (0 outside the tenant)."""
    return Run.objects.for_tenant(tenant).filter(pk=run_id).values_list("event_seq", flat=True).first() or 0


def run_events_after(*, run: Run, after: int, limit: int = EVENTS_PAGE) -> list[RunEvent]:
    """Events after ``after`` up to the run row's own ``event_seq``: rendered with that row, they
    agree with it (events committed since are the next update's, never skipped past)."""
    return events_between(run_id=run.pk, after=after, upto=run.event_seq, limit=limit)


def run_events_between(*, run_id: int, after: int, upto: int) -> list[RunEvent]:
    """Events ``after`` < seq ≤ ``upto`` of a run the caller may see (a live socket's, checked when it connected)."""
    return events_between(run_id=run_id, after=after, upto=upto)


def run_plan(*, run: Run) -> list[PlanStep]:
    return plan_steps(run_id=run.pk)


def agent_list(*, tenant) -> list:
    """The tenant's agents with how many runs each has had."""
    from django.db.models import Count

    from agents.models import Agent

    return list(Agent.objects.for_tenant(tenant).annotate(run_count=Count("runs")).order_by("-enabled", "name"))


def agent_get(*, tenant, slug: str):
    from agents.models import Agent

    return Agent.objects.for_tenant(tenant).filter(slug=slug).first()


def agent_version_history(*, agent, runs_per_version: int = 5) -> list[dict]:
    """Newest first: each version with who saved it, its diff against the one before, how many runs used it and
    the latest of them (three queries, however many versions)."""
    from django.db.models import Count, F, Window
    from django.db.models.functions import RowNumber

    from agents.services.agent_versions import agent_version_diff

    versions = list(AgentVersion.objects.filter(agent=agent).select_related("created_by").order_by("version"))
    runs = Run.objects.for_tenant(agent.tenant).filter(agent=agent)
    counts = dict(runs.values_list("agent_version").annotate(n=Count("id")).values_list("agent_version", "n"))
    recent: dict[int, list[Run]] = {}
    for run in (runs.annotate(nth=Window(RowNumber(), partition_by=F("agent_version"), order_by=F("number").desc()))
                .filter(nth__lte=runs_per_version).order_by("agent_version", "-number")
                .only("number", "status", "goal", "created_at", "agent_version")):
        recent.setdefault(run.agent_version, []).append(run)
    history, previous = [], None
    for version in versions:
        history.append({"version": version, "diff": agent_version_diff(previous, version),
                        "run_count": counts.get(version.version, 0), "runs": recent.get(version.version, [])})
        previous = version
    return history[::-1]


def tool_usage(*, tenant) -> dict[str, dict]:
    """Per tool, the tenant's calls, errors and median duration (ms), from its ToolInvocation rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tool, count(*), count(*) FILTER (WHERE status = 'error'),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FROM agents_toolinvocation"
            " WHERE tenant_id = %s GROUP BY tool", [tenant.pk])
        return {tool: {"calls": calls, "errors": errors, "p50_ms": None if p50 is None else round(p50)}
                for tool, calls, errors, p50 in cursor.fetchall()}


def schema_fields(schema: dict) -> list[dict]:
    """A tool's JSON schema as rows a person reads: name, type, required, description, allowed values."""
    required = set(schema.get("required", []))
    definitions = schema.get("$defs", {})
    rows = []
    for name, spec in schema.get("properties", {}).items():
        if "$ref" in spec:
            spec = {**definitions.get(spec["$ref"].rsplit("/", 1)[-1], {}), **spec}
        kind = spec.get("type") or " or ".join(o.get("type", "?") for o in spec.get("anyOf", [])) or "value"
        if kind == "array" and isinstance(spec.get("items"), dict):
            kind = f"list of {spec['items'].get('type', 'values')}"
        rows.append({"name": name, "type": kind, "required": name in required,
                     "description": spec.get("description", spec.get("title", "")),
                     "choices": spec.get("enum", []), "default": spec.get("default")})
    return rows


def tool_catalog(*, tenant) -> list[dict]:
    """Every tool in the registry with its governance (declared and effective risk, timeout, retries,
    idempotency, cost per call), its schema as rows, the tenant's agents that may use it and its use."""
    from agents.models import Agent
    from agents.tool_settings import tenant_tool_risks
    from agents.tools import tenant_tools

    raised = tenant_tool_risks(tenant)
    usage = tool_usage(tenant=tenant)
    agents = list(Agent.objects.for_tenant(tenant).only("name", "slug", "tools"))
    return [{"spec": spec, "risk": max(spec.risk, raised.get(name, spec.risk)), "schema": spec.json_schema(),
             "fields": schema_fields(spec.json_schema()), "agents": [a for a in agents if name in a.tools],
             "usage": usage.get(name, {"calls": 0, "errors": 0, "p50_ms": None})}
            for name, spec in sorted(tenant_tools(tenant).items())]
