"""Agents change by versions: every real change of instructions or configuration is a new version,
and runs keep the version they started with. Admins create, edit, disable and enable agents here."""

from __future__ import annotations

import difflib
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from agents.gateway import model_problem
from agents.models import Agent, AgentVersion
from agents.services.transitions import RunError
from agents.tools import REGISTRY, tenant_tools
from console.services import audit_record

VERSIONED_FIELDS = ("instructions", "model", "fallback_models", "tools", "max_steps", "max_tokens", "max_cost_usd",
                    "max_seconds", "plan_mode", "plan_approval", "memory")
DESCRIBING_FIELDS = ("name", "description")  # shown to people, not to the model: changed without a new version
MEMORY_KEYS = ("recall", "remember")
LIMITS = {"max_steps": (1, 1000), "max_tokens": (100, 10_000_000), "max_seconds": (10, 7 * 24 * 3600)}
MAX_FALLBACKS = 5


class AgentRefused(RunError):
    """Configuration that cannot be saved; ``problems`` says, per field, what to fix."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__(" ".join(f"{field}: {problem}" for field, problem in problems.items()))


def agent_config_problems(values: dict, *, tenant=None) -> dict[str, str]:
    """Per field, why a value cannot be saved (only the fields given are checked; tools as ``tenant`` has them)."""
    problems = {}
    if "name" in values and not str(values["name"]).strip():
        problems["name"] = "Give the agent a name."
    if "instructions" in values and not str(values["instructions"]).strip():
        problems["instructions"] = "Write the agent's instructions."
    if "model" in values and (problem := model_problem(values["model"])):
        problems["model"] = problem
    if "fallback_models" in values:
        fallbacks = values["fallback_models"]
        if not isinstance(fallbacks, list) or len(fallbacks) > MAX_FALLBACKS:
            problems["fallback_models"] = f"Give at most {MAX_FALLBACKS} fallback models, in the order to try them."
        elif found := next((f"{name}: {p}" for name in fallbacks if (p := model_problem(name))), ""):
            problems["fallback_models"] = found
        elif len(set(fallbacks)) != len(fallbacks) or values.get("model") in fallbacks:
            problems["fallback_models"] = "Name each model once, and not the main model again."
    if "tools" in values:
        known = tenant_tools(tenant) if tenant is not None else REGISTRY
        unknown = [t for t in values["tools"] if t not in known]
        if unknown:
            problems["tools"] = f"Unknown tools: {', '.join(map(str, unknown))}."
    for field, (low, high) in LIMITS.items():
        if field in values and not (isinstance(values[field], int) and low <= values[field] <= high):
            problems[field] = f"Give a whole number from {low:,} to {high:,}."
    if "max_cost_usd" in values:
        try:
            cost = Decimal(str(values["max_cost_usd"]))
            if not (Decimal("0.01") <= cost <= Decimal("100000")) or cost.as_tuple().exponent < -4:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            problems["max_cost_usd"] = "Give an amount from $0.01 to $100,000 (at most 4 decimals)."
    if "memory" in values and (not isinstance(values["memory"], dict) or set(values["memory"]) - set(MEMORY_KEYS)
                               or not all(isinstance(v, bool) for v in values["memory"].values())):
        problems["memory"] = f"Memory settings are {', '.join(MEMORY_KEYS)}: each true or false."
    return problems


def _normalized(values: dict) -> dict:
    if "max_cost_usd" in values:
        values = {**values, "max_cost_usd": Decimal(str(values["max_cost_usd"]))}
    if "memory" in values:
        values = {**values, "memory": {key: bool(values["memory"].get(key)) for key in MEMORY_KEYS}}
    return values


def agent_version_snapshot(agent: Agent, *, actor=None) -> AgentVersion:
    """The row that keeps the agent's instructions and configuration as they are at its current version."""
    config = {name: getattr(agent, name) for name in VERSIONED_FIELDS if name != "instructions"}
    config["max_cost_usd"] = str(config["max_cost_usd"])
    version, _ = AgentVersion.objects.get_or_create(agent=agent, version=agent.version, defaults={
        "instructions": agent.instructions, "config": config, "created_by": actor})
    return version


def agent_create(*, tenant, actor, name: str, slug: str = "", **values) -> Agent:
    """A new agent at version 1 (its snapshot kept), audited. AgentRefused says what to fix."""
    slug = slugify(slug or name)[:60]
    unknown = set(values) - set(VERSIONED_FIELDS) - set(DESCRIBING_FIELDS)
    if unknown:
        raise RunError(f"Cannot set {', '.join(sorted(unknown))}.")
    problems = agent_config_problems({"name": name, **values}, tenant=tenant)
    if not slug:
        problems["slug"] = "Give the agent a short name of letters, digits and dashes."
    elif Agent.objects.for_tenant(tenant).filter(slug=slug).exists():
        problems["slug"] = f"An agent '{slug}' exists already."
    if problems:
        raise AgentRefused(problems)
    try:
        with transaction.atomic():
            agent = Agent.objects.create(tenant=tenant, name=name.strip()[:100], slug=slug, **_normalized(values))
            agent_version_snapshot(agent, actor=actor)
            audit_record(tenant=tenant, actor=actor, verb="agent.created", target=f"agent {agent.slug}",
                         data={"version": 1})
    except IntegrityError:  # made at the same moment by someone else
        raise AgentRefused({"slug": f"An agent '{slug}' exists already."}) from None
    return agent


def agent_update(*, agent: Agent, actor, **changes) -> Agent:
    """Change an agent's instructions or configuration. Any real change makes a new version; runs
    keep the version they started with. Its name and description change without a version."""
    unknown = set(changes) - set(VERSIONED_FIELDS) - set(DESCRIBING_FIELDS)
    if unknown:
        raise RunError(f"Cannot change {', '.join(sorted(unknown))}; changeable: {', '.join(VERSIONED_FIELDS)}.")
    known = tenant_tools(agent.tenant)
    unknown_tools = [t for t in changes.get("tools", []) if t not in known]
    if unknown_tools:
        raise RunError(f"Unknown tools: {', '.join(unknown_tools)}.")
    if problems := agent_config_problems({**changes, **({"model": agent.model} if "model" not in changes
                                                         and "fallback_models" in changes else {})},
                                         tenant=agent.tenant):
        raise AgentRefused(problems)
    changes = _normalized(changes)
    with transaction.atomic():
        agent = Agent.objects.for_tenant(agent.tenant).select_for_update().get(pk=agent.pk)
        agent_version_snapshot(agent)  # the version being replaced is kept, even if nothing recorded it yet
        changed = {name: value for name, value in changes.items() if getattr(agent, name) != value}
        if not changed:
            return agent
        for name, value in changed.items():
            setattr(agent, name, value)
        versioned = sorted(set(changed) & set(VERSIONED_FIELDS))
        if versioned:
            agent.version += 1
        agent.save()
        if versioned:
            agent_version_snapshot(agent, actor=actor)
        audit_record(tenant=agent.tenant, actor=actor, verb="agent.changed", target=f"agent {agent.slug}",
                     data={"version": agent.version, "fields": sorted(changed)})
    return agent


def agent_set_enabled(*, agent: Agent, enabled: bool, actor) -> Agent:
    """Disable (no new runs; running ones go on with their version) or enable an agent, audited."""
    with transaction.atomic():
        if Agent.objects.for_tenant(agent.tenant).filter(pk=agent.pk).exclude(enabled=enabled).update(enabled=enabled):
            audit_record(tenant=agent.tenant, actor=actor, verb="agent.enabled" if enabled else "agent.disabled",
                         target=f"agent {agent.slug}")
    agent.refresh_from_db()
    return agent


def _shown(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {'on' if v is True else 'off' if v is False else v}" for k, v in value.items()) or "(none)"
    return str(value)


def agent_version_diff(older: AgentVersion | None, newer: AgentVersion) -> dict:
    """What changed from ``older`` to ``newer``: {"instructions": unified diff lines, "config": [(field, was, is)]}."""
    if older is None:
        return {"instructions": [], "config": [], "first": True}
    lines = list(difflib.unified_diff(older.instructions.splitlines(), newer.instructions.splitlines(),
                                      f"v{older.version}", f"v{newer.version}", lineterm="", n=1))
    config = [(name, _shown(older.config.get(name, "")), _shown(newer.config.get(name, "")))
              for name in VERSIONED_FIELDS if name != "instructions" and older.config.get(name) != newer.config.get(name)]
    return {"instructions": lines[2:], "config": config, "first": False}
