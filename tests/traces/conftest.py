"""A run with a stored trace of any size, written as the exporter writes it (one INSERT a batch)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.services import run_start
from tests.factories import make_looper
from traces.models import Span

KIND_CYCLE = ("model", "tool", "checkpoint", "budget")


def make_trace(run, spans: int, *, error_every: int = 0, finished: bool = True) -> list[Span]:
    """The run's span, one step per 4 spans below it (a model call with tokens and cost, a tool call, a
    checkpoint, a budget check): ``spans`` in all. Every ``error_every``-th tool call failed."""
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


@pytest.fixture
def looper(cast):
    return make_looper(cast.acme)


@pytest.fixture
def traced_run(cast, looper):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    run.status, run.finished_at = "completed", timezone.now()
    run.save(update_fields=["status", "finished_at"])
    make_trace(run, 50, error_every=3)
    return run
