"""Agents change by versions: every real change of instructions or configuration is a new version,
and runs keep the version they started with."""

from __future__ import annotations

from django.db import transaction

from agents.models import Agent, AgentVersion
from agents.services.transitions import RunError
from agents.tools import REGISTRY
from console.services import audit_record

VERSIONED_FIELDS = ("instructions", "model", "fallback_models", "tools", "max_steps", "max_tokens", "max_cost_usd",
                    "max_seconds", "plan_mode", "plan_approval")


def agent_version_snapshot(agent: Agent, *, actor=None) -> AgentVersion:
    """The row that keeps the agent's instructions and configuration as they are at its current version."""
    config = {name: getattr(agent, name) for name in VERSIONED_FIELDS if name != "instructions"}
    config["max_cost_usd"] = str(config["max_cost_usd"])
    version, _ = AgentVersion.objects.get_or_create(agent=agent, version=agent.version, defaults={
        "instructions": agent.instructions, "config": config, "created_by": actor})
    return version


def agent_update(*, agent: Agent, actor, **changes) -> Agent:
    """Change an agent's instructions or configuration. Any real change makes a new version; runs
    keep the version they started with."""
    unknown = set(changes) - set(VERSIONED_FIELDS)
    if unknown:
        raise RunError(f"Cannot change {', '.join(sorted(unknown))}; changeable: {', '.join(VERSIONED_FIELDS)}.")
    unknown_tools = [t for t in changes.get("tools", []) if t not in REGISTRY]
    if unknown_tools:
        raise RunError(f"Unknown tools: {', '.join(unknown_tools)}.")
    with transaction.atomic():
        agent = Agent.objects.for_tenant(agent.tenant).select_for_update().get(pk=agent.pk)
        agent_version_snapshot(agent)  # the version being replaced is kept, even if nothing recorded it yet
        changed = {name: value for name, value in changes.items() if getattr(agent, name) != value}
        if not changed:
            return agent
        for name, value in changed.items():
            setattr(agent, name, value)
        agent.version += 1
        agent.save()
        agent_version_snapshot(agent, actor=actor)
        audit_record(tenant=agent.tenant, actor=actor, verb="agent.changed", target=f"agent {agent.slug}",
                     data={"version": agent.version, "fields": sorted(changed)})
    return agent
