"""Starting runs."""

from __future__ import annotations

import hashlib
import json
import secrets

from django.db import IntegrityError, transaction

from agents import engine
from agents.events import emit
from agents.models import Agent, AgentVersion, ConversationMessage, Run, RunStatus, run_number_next
from agents.run_store import run_created, run_write
from agents.services.transitions import RunError, enqueue_on_commit, state_save, who

MAX_GOAL_CHARS = 5000
MAX_INSTRUCTION_CHARS = 2000


class IdempotencyMismatch(RunError):
    """An idempotency key already used for a run of another agent or goal."""


def idempotency_fingerprint(*, agent: Agent, goal: str) -> str:
    return hashlib.sha256(json.dumps({"agent": agent.pk, "goal": goal}, sort_keys=True).encode()).hexdigest()


def _same_request(run: Run, fingerprint: str) -> Run:
    if run.idempotency_fingerprint and run.idempotency_fingerprint != fingerprint:  # runs made before 0007 have none
        raise IdempotencyMismatch("This Idempotency-Key was used for a run of another agent or goal; "
                                  "send a new key for a new run.")
    return run


def run_start(*, tenant, agent: Agent, goal: str, requested_by=None, idempotency_key: str | None = None,
              version: int | None = None) -> Run:
    return run_start_once(tenant=tenant, agent=agent, goal=goal, requested_by=requested_by,
                          idempotency_key=idempotency_key, version=version)[0]


def run_start_once(*, tenant, agent: Agent, goal: str, requested_by=None,
                   idempotency_key: str | None = None, version: int | None = None) -> tuple[Run, bool]:
    """Start a run, or with an idempotency key already used for the same agent and goal, return that run
    (IdempotencyMismatch for another agent or goal). The flag says whether this call created it (when two
    calls race with one key, exactly one did). ``version``: an earlier version of the agent to run (its
    snapshot), instead of the current one."""
    goal = (goal or "").strip()
    if not goal:
        raise RunError("Write a goal for the run.")
    if len(goal) > MAX_GOAL_CHARS:
        raise RunError(f"The goal is {len(goal)} characters; keep it under {MAX_GOAL_CHARS}.")
    if agent.tenant_id != tenant.id:
        raise RunError("That agent does not belong to this tenant.")
    if not agent.enabled:
        raise RunError(f"The agent {agent.name} is disabled; an admin can enable it again.")
    version, model = (agent.version, agent.model) if version in (None, agent.version) else (version, None)
    if model is None:
        snapshot = AgentVersion.objects.filter(agent=agent, version=version).first()
        if snapshot is None:
            raise RunError(f"{agent.name} has no version {version}; it is at version {agent.version}.")
        model = snapshot.config.get("model", agent.model)
    fingerprint = idempotency_fingerprint(agent=agent, goal=goal) if idempotency_key else ""
    if idempotency_key and (existing := Run.objects.for_tenant(tenant).filter(idempotency_key=idempotency_key).first()):
        return _same_request(existing, fingerprint), False
    try:
        with transaction.atomic():  # the version's snapshot is written when it is replaced (agent_update)
            run = Run.objects.create(
                tenant=tenant, number=run_number_next(tenant.id), agent=agent, agent_version=version, requested_by=requested_by, goal=goal,
                status=RunStatus.QUEUED, trace_id=secrets.token_hex(16), idempotency_key=idempotency_key or None,
                idempotency_fingerprint=fingerprint,
            )
            run_created(run)
            first = engine.user_message(goal)
            run.writes.message(ConversationMessage(run=run, seq=1, step=0, message=first))
            state_save(run, engine.RunState())
            emit(run, "run.created", {"goal": goal, "agent": agent.name, "agent_version": version,
                                      "model": model, "by": who(requested_by)})
            emit(run, "status", {"from": "created", "to": RunStatus.QUEUED})
            run_write(run)
            enqueue_on_commit(run.pk)
    except IntegrityError:
        # Two requests with the same Idempotency-Key at once: the other one won.
        return _same_request(Run.objects.for_tenant(tenant).get(idempotency_key=idempotency_key), fingerprint), False
    return run, True
