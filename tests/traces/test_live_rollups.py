"""A running run's skeleton kept current incrementally: each read takes only the spans stored since the last
one (children may come before their step), and the rollups still equal the sum of the children, the same as
a skeleton computed from scratch."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.services import run_start
from tests.factories import make_trace
from traces import selectors
from traces.models import Span
from traces.selectors import trace_skeleton


def rows_of(data):
    return [dict(zip(data["fields"], row, strict=True)) for row in data["spans"]]


def assert_rollups_add_up(data):
    rows = rows_of(data)
    children = {index: [] for index in range(len(rows))}
    for row in rows:
        if row["parent"] >= 0:
            children[row["parent"]].append(row)
    for index, row in enumerate(rows):
        below = children[index]
        assert row["subtree_tokens"] == row["tokens"] + sum(child["subtree_tokens"] for child in below), row
        assert abs(row["subtree_cost_usd"] - row["cost_usd"] - sum(c["subtree_cost_usd"] for c in below)) < 1e-5, row
        errors = int(data["statuses"][row["status"]] == "error")
        assert row["subtree_errors"] == errors + sum(child["subtree_errors"] for child in below), row
        for child in below:
            assert row["subtree_duration_us"] >= child["start_us"] - row["start_us"] + child["subtree_duration_us"] - 1


def a_step(run, number: int, *, at_ms: int, failed: bool = False) -> tuple[Span, list[Span]]:
    """A step span and its model and tool calls, not yet stored."""
    start = run.created_at + timedelta(milliseconds=at_ms)
    step_id = f"{0xc000000000000000 + number:016x}"
    common = {"tenant_id": run.tenant_id, "run": run, "trace_id": run.trace_id}
    step = Span(**common, span_id=step_id, parent_span_id=run.trace_id[:16], name=f"step {number}", kind="step",
                started_at=start, ended_at=start + timedelta(milliseconds=40), attributes={"proctor.step": number})
    calls = [Span(**common, span_id=f"{0xd000000000000000 + number * 10:016x}", parent_span_id=step_id, kind="model",
                  name=f"chat {number}", started_at=start + timedelta(milliseconds=1), ended_at=start + timedelta(milliseconds=20),
                  tokens=100 + number, cost_usd="0.001000"),
             Span(**common, span_id=f"{0xd000000000000001 + number * 10:016x}", parent_span_id=step_id, kind="tool",
                  name=f"execute_tool noop {number}", started_at=start + timedelta(milliseconds=21),
                  ended_at=start + timedelta(milliseconds=39), status="error" if failed else "unset")]
    return step, calls


def test_live_reads_take_only_new_spans_and_rollups_equal_the_sum_of_children(cast, looper):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 300 times", requested_by=cast.member)
    make_trace(run, 400, finished=False, error_every=7)
    first = trace_skeleton(tenant=cast.acme, run=run)
    assert len(first["spans"]) == 401  # and the run so far
    assert_rollups_add_up(first)

    for number in range(1000, 1006):
        step, calls = a_step(run, number, at_ms=10_000 + number, failed=number % 2 == 0)
        Span.objects.bulk_create(calls)  # the calls end first, so they are stored before their step
        with CaptureQueriesContext(connection) as queries:
            before_step = trace_skeleton(tenant=cast.acme, run=run)
        span_reads = [q["sql"] for q in queries.captured_queries if 'FROM "traces_span"' in q["sql"]]
        assert span_reads and all('"traces_span"."id" >' in sql for sql in span_reads)  # only the new spans
        orphans = [row for row in rows_of(before_step) if row["name"] in (calls[0].name, calls[1].name)]
        assert [row["parent"] for row in orphans] == [0, 0]  # under the run so far until their step comes
        assert_rollups_add_up(before_step)
        Span.objects.bulk_create([step])
        after_step = trace_skeleton(tenant=cast.acme, run=run)
        assert_rollups_add_up(after_step)
        rows = rows_of(after_step)
        [step_row] = [row for row in rows if row["name"] == step.name]
        assert step_row["subtree_tokens"] == 100 + number and step_row["subtree_errors"] == int(number % 2 == 0)
        assert {rows[row["parent"]]["name"] for row in rows if row["name"] in (calls[0].name, calls[1].name)} == {step.name}

    kept = trace_skeleton(tenant=cast.acme, run=run)
    selectors._live_trees.clear()  # from scratch: the same skeleton
    assert trace_skeleton(tenant=cast.acme, run=run)["spans"][1:] == kept["spans"][1:]  # (the run so far ends now)
    assert kept["spans"][0][selectors.SKELETON_FIELDS.index("subtree_tokens")] == sum(
        Span.objects.filter(run=run).values_list("tokens", flat=True))


def test_a_span_committed_late_under_a_lower_id_is_not_missed(cast, looper, monkeypatch):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    make_trace(run, 40, finished=False)
    early_step, early_calls = a_step(run, 1, at_ms=5)
    Span.objects.bulk_create([early_step])
    trace_skeleton(tenant=cast.acme, run=run)
    late = early_calls[0]
    Span.objects.bulk_create([late])
    Span.objects.filter(pk=late.pk).update(id=early_step.pk - 1000)  # as if its batch had taken a lower id
    monkeypatch.setattr(selectors, "spans_stored_count", lambda run_id: Span.objects.filter(run_id=run_id).count())
    rows = rows_of(trace_skeleton(tenant=cast.acme, run=run))
    [found] = [row for row in rows if row["name"] == late.name]
    assert rows[found["parent"]]["name"] == early_step.name
