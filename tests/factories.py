"""Plain factory functions: the standing cast of the tests."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from console.models import Membership, Role, Tenant

PASSWORD = "correct horse battery"


def make_tenant(slug: str, name: str | None = None) -> Tenant:
    return Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug.title()})[0]


@cache
def password_hash() -> str:
    return make_password(PASSWORD)  # hashing is slow on purpose: do it once per test session


def make_user(username: str, memberships: dict[Tenant, Role] | None = None, **extra):
    user = get_user_model().objects.create(username=username, password=password_hash(), **extra)
    for tenant, role in (memberships or {}).items():
        Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


RENEWAL_GOAL = "Prepare the renewal plan for account ACME-042 and email it to its success manager"
STOPS = ("waiting_for_human", "completed", "failed", "cancelled")


def make_looper(tenant, *, model: str = "demo:noop", **extra):
    """An agent that calls the no-op tool as many times as its goal says ("Call noop 3 times")."""
    from agents.models import Agent

    return Agent.objects.create(tenant=tenant, name="Looper", slug="looper", instructions="Call noop.", model=model,
                                tools=["noop"], plan_mode=False, **extra)


def advance(run, until=STOPS):
    """Step a run in this process (no worker) until it stops at one of ``until``; the run, refreshed."""
    from agents.services import run_advance

    for _ in range(20):
        if run_advance(run_id=run.pk, worker="w1") in until:
            break
    run.refresh_from_db()
    return run


KIND_CYCLE = ("model", "tool", "checkpoint", "budget")


def make_trace(run, spans: int, *, error_every: int = 0, finished: bool = True) -> list:
    """The run's span, one step per 4 spans below it (a model call with tokens and cost, a tool call, a
    checkpoint, a budget check): ``spans`` in all. Every ``error_every``-th tool call failed."""
    from traces.models import Span

    start = run.created_at
    rows, step, step_id = [], 0, ""
    root_id = run.trace_id[:16]
    if finished:
        rows.append(Span(tenant_id=run.tenant_id, run=run, trace_id=run.trace_id, span_id=root_id, name="invoke_agent Looper",
                         kind="run", started_at=start, ended_at=start + timedelta(milliseconds=spans * 10),
                         attributes={"gen_ai.operation.name": "invoke_agent"}))
    n = 0
    while len(rows) < spans:
        if n % 5 == 0:
            step += 1
            step_id = f"{0xa000000000000000 + step:016x}"
            rows.append(Span(tenant_id=run.tenant_id, run=run, trace_id=run.trace_id, span_id=step_id, parent_span_id=root_id,
                             name=f"step {step}", kind="step", started_at=start + timedelta(milliseconds=n * 10),
                             ended_at=start + timedelta(milliseconds=n * 10 + 45), attributes={"proctor.step": step}))
        else:
            kind = KIND_CYCLE[(n % 5) - 1]
            failed = kind == "tool" and error_every and step % error_every == 0
            rows.append(Span(tenant_id=run.tenant_id, run=run, trace_id=run.trace_id, span_id=f"{0xb000000000000000 + n:016x}",
                             parent_span_id=step_id, name=f"{kind} {n}" if kind != "tool" else f"execute_tool noop {n}",
                             kind=kind, started_at=start + timedelta(milliseconds=n * 10 + 1),
                             ended_at=start + timedelta(milliseconds=n * 10 + 9), status="error" if failed else "unset",
                             tokens=30 if kind == "model" else 0, cost_usd="0.000150" if kind == "model" else 0,
                             attributes={"gen_ai.tool.name": "noop", "gen_ai.tool.call.id": f"call-{n}"} if kind == "tool"
                             else {"gen_ai.operation.name": "chat"} if kind == "model" else {}))
        n += 1
    Span.objects.bulk_create(rows, batch_size=2000)
    return rows
