"""A demo run's trace as stored: a span of every kind with its GenAI attributes, subtree rollups equal
to the sum of their children, and a decision record per decision. Real worker processes make the
steps; this process (the web side, like console.asgi) records the approval's wait when it decides."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ModelCall, RunStatus
from agents.services import run_start
from agents.tracing import record_span
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from tests.agents.test_runs_with_worker import status_of
from tests.conftest import wait_for
from tests.factories import RENEWAL_GOAL
from traces.models import DecisionRecord, Span
from traces.selectors import trace_skeleton

EVERY_KIND = {"run", "step", "model", "tool", "approval", "memory_search", "memory_write", "checkpoint", "budget"}


@pytest.fixture
def traced_here(transactional_db):
    """This process exports its spans to the database, as the web process does (console.asgi)."""
    import console.asgi  # noqa: F401  (configures the process's TracerProvider with the span sinks)
    from console.telemetry import current_provider

    yield current_provider()
    current_provider().force_flush()


def test_a_demo_run_with_an_approval_memory_and_budget_checks_has_a_span_of_every_kind(cast, renewals, start_worker,
                                                                                        traced_here):
    start_worker(env={"SPAN_EXPORT_DELAY_MS": "100"})
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    status_of(run, RunStatus.WAITING_FOR_HUMAN)
    approval = ApprovalRequest.objects.get(run=run)
    approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    # The memory app records its operations the same way (docs/ARCHITECTURE.md, Traces): record ids only.
    now = timezone.now()
    record_span(trace_id=run.trace_id, kind="memory_search", name="search_memory renewals", started=now,
                ended=now + timedelta(milliseconds=3),
                attributes={"gen_ai.operation.name": "search_memory", "proctor.memory.ids": [7, 9]})
    record_span(trace_id=run.trace_id, kind="memory_write", name="create_memory fact", started=now,
                ended=now + timedelta(milliseconds=2),
                attributes={"gen_ai.operation.name": "create_memory", "proctor.memory.ids": [11]})
    status_of(run, RunStatus.COMPLETED)
    traced_here.force_flush()
    calls = ModelCall.objects.filter(run=run).count()

    def all_stored():
        stored = Span.objects.for_tenant(cast.acme).filter(run=run)
        return (set(stored.values_list("kind", flat=True)) >= EVERY_KIND
                and stored.filter(kind="model").count() == calls)
    wait_for(all_stored, 20, message="a span of every kind")

    spans = {kind: list(Span.objects.for_tenant(cast.acme).filter(run=run, kind=kind)) for kind in EVERY_KIND}
    [root] = spans["run"]
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.agent.id"] == str(renewals.pk)
    assert root.attributes["gen_ai.conversation.id"] == run.trace_id
    for step in spans["step"]:
        assert step.attributes["gen_ai.agent.name"] == renewals.name
        assert step.attributes["gen_ai.conversation.id"] == run.trace_id
    for model in spans["model"]:
        assert model.attributes["gen_ai.operation.name"] == "chat"
        assert model.attributes["gen_ai.provider.name"] == "demo"
        for usage in ("input_tokens", "output_tokens", "cache_read.input_tokens", "cache_creation.input_tokens",
                      "reasoning.output_tokens"):
            assert f"gen_ai.usage.{usage}" in model.attributes
        assert model.tokens == model.attributes["gen_ai.usage.input_tokens"] + model.attributes["gen_ai.usage.output_tokens"]
    for tool in spans["tool"]:
        assert tool.attributes["gen_ai.operation.name"] == "execute_tool" and tool.attributes["gen_ai.tool.call.id"]
    step_ids = {s.span_id for s in spans["step"]}
    assert all(s.parent_span_id in step_ids for s in spans["checkpoint"] + spans["budget"])
    [wait] = spans["approval"]
    assert wait.parent_span_id == root.span_id and wait.name == "approval wait email.send"
    assert wait.attributes["proctor.approval.decided_by"] == "rita"
    assert wait.attributes["proctor.approval.decision"] == "approved"
    assert wait.attributes["proctor.approval.waited_ms"] >= 0
    assert wait.attributes["gen_ai.tool.name"] == "email.send"
    assert spans["memory_search"][0].attributes["proctor.memory.ids"] == [7, 9]

    skeleton = trace_skeleton(tenant=cast.acme, run=run)
    fields = skeleton["fields"]
    rows = [dict(zip(fields, row, strict=True)) for row in skeleton["spans"]]
    run.refresh_from_db()
    assert rows[0]["kind"] == skeleton["kinds"].index("run") and rows[0]["parent"] == -1
    assert rows[0]["subtree_tokens"] == run.input_tokens + run.output_tokens > 0
    for index, row in enumerate(rows):  # every subtree total is its own value plus its children's totals
        children = [r for r in rows if r["parent"] == index]
        assert row["subtree_tokens"] == row["tokens"] + sum(c["subtree_tokens"] for c in children)
        assert row["subtree_errors"] == (row["status"] == 2) + sum(c["subtree_errors"] for c in children)
        assert row["subtree_cost_usd"] == pytest.approx(row["cost_usd"] + sum(c["subtree_cost_usd"] for c in children))

    decisions = {d.step: d for d in DecisionRecord.objects.for_tenant(cast.acme).filter(run=run)}
    assert len(decisions) == len({s.attributes["proctor.step"] for s in spans["model"]
                                  for s in [next(p for p in spans["step"] if p.span_id == s.parent_span_id)]})
    send = next(d for d in decisions.values() if d.tool == "email.send")
    assert send.type == "call_tool" and send.summary
    assert {"tool": "email.send", "outcome": "needs approval"}.items() <= next(
        c for c in send.policy_checks if c["tool"] == "email.send").items()
    assert send.inputs["messages"] > 0 and send.inputs["tool_results"]
    assert max(decisions.values(), key=lambda d: d.step).type == "finish"
