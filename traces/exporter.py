"""The database span sink: finished spans of runs into the Span table, in batches. Registered into
the runtime's span sinks (agents.hooks) by traces.apps; every process's TracerProvider exports to it.
After a batch is stored, each run it touched is announced to its timeline's sockets (traces.live).
When an OTLP backend is configured, the same serialized batch (every span, of a run or not) goes
onto the relay's outbox first (traces.otlp): the span relay process encodes and sends it."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import DatabaseError, close_old_connections
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agents.models import Run
from console.db import prepared_cursor
from traces.live import publish_spans_stored, spans_stored_add
from traces.models import KINDS, Span
from traces.otlp import outbox_push, relay_fields, relaying

logger = logging.getLogger(__name__)

BY_OPERATION = {"chat": "model", "execute_tool": "tool", "invoke_agent": "step", "search_memory": "memory_search",
                "create_memory": "memory_write", "update_memory": "memory_write", "delete_memory": "memory_write"}


def span_kind(attributes: dict, has_parent: bool) -> str:
    """``proctor.span.kind`` when the producer said it (agents.tracing does for every span); otherwise
    from the GenAI operation (a root invoke_agent is the run)."""
    stated = attributes.get("proctor.span.kind", "")
    if stated in KINDS:
        return stated
    operation = attributes.get("gen_ai.operation.name", "")
    if operation == "invoke_agent" and not has_parent:
        return "run"
    return BY_OPERATION.get(operation, "other")


def _own_tokens(attributes: dict) -> int:
    return int(attributes.get("gen_ai.usage.input_tokens", 0) or 0) + int(attributes.get("gen_ai.usage.output_tokens", 0) or 0)


# One statement a batch, resolving each span's run and tenant by its trace id in the database: no
# model instances, one JSON parameter (an export of hundreds of spans holds the process's
# interpreter for a fraction of what building ORM rows took, so the steps beside it are not held up).
INSERT = f"""
    INSERT INTO {Span._meta.db_table} (tenant_id, run_id, trace_id, span_id, parent_span_id, name, kind, started_at,
                                      ended_at, status, tokens, cost_usd, attributes)
    SELECT r.tenant_id, r.id, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.started_at, s.ended_at,
           s.status, s.tokens, s.cost_usd, s.attributes
      FROM json_to_recordset(%s) AS s(trace_id text, span_id text, parent_span_id text, name text, kind text,
                                      started_at timestamptz, ended_at timestamptz, status text, tokens integer,
                                      cost_usd numeric, attributes jsonb)
      JOIN {Run._meta.db_table} r ON r.trace_id = s.trace_id
        ON CONFLICT (trace_id, span_id) DO NOTHING
    RETURNING run_id, tenant_id, kind = 'run'
"""


def _iso(nanoseconds: int) -> str:
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC).isoformat()


def span_row(s: ReadableSpan) -> dict:
    attributes = dict(s.attributes or {})
    return {"trace_id": format(s.context.trace_id, "032x"), "span_id": format(s.context.span_id, "016x"),
            "parent_span_id": format(s.parent.span_id, "016x") if s.parent else "", "name": s.name[:200],
            "kind": span_kind(attributes, s.parent is not None), "status": s.status.status_code.name.lower(),
            "started_at": _iso(s.start_time), "ended_at": _iso(s.end_time), "tokens": _own_tokens(attributes),
            "cost_usd": round(float(attributes.get("proctor.cost_usd", 0) or 0), 6), "attributes": attributes}


def _materialize_soon(run_id: int) -> None:
    from traces.tasks import skeleton_materialize_later

    try:
        skeleton_materialize_later.apply_async((run_id,), countdown=2)  # after the other processes' last batches
    except Exception:  # the broker down: the first read materializes it instead
        logger.warning("could not queue the skeleton of run %s", run_id, exc_info=True)


class DatabaseSpanExporter(SpanExporter):
    """Writes a batch of finished spans to the Span table in one INSERT. Spans of traces that
    belong to no run are not stored here (the OTLP relay, when configured, still gets them). Across
    tenants by design (one exporter per process): each span gets its run's tenant."""

    def __init__(self) -> None:
        self.relaying = relaying()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.relaying:  # the rows carry what OTLP needs too; json_to_recordset ignores those keys
            rows = [span_row(s) | relay_fields(s) for s in spans]
        else:
            rows = [span_row(s) for s in spans]
        rows_json = json.dumps(rows, default=list, separators=(",", ":"))
        if self.relaying and spans:
            try:
                outbox_push(spans[0].resource, rows_json)  # one process, one resource
            except Exception:  # Redis down: these spans do not reach the backend; the timeline still gets them
                logger.warning("could not put %d spans on the OTLP outbox", len(spans), exc_info=True)
        try:
            with prepared_cursor() as cursor:
                cursor.execute(INSERT, [rows_json])
                stored = cursor.fetchall()
        except DatabaseError:
            logger.warning("could not store %d spans", len(spans), exc_info=True)
            close_old_connections()
            return SpanExportResult.FAILURE
        counts = Counter(run_id for run_id, _, _ in stored)
        try:
            spans_stored_add(counts)  # before the announcement: a reader then sees the new version
        except Exception:  # Redis down: a finished run's cached skeleton may lag until it is back
            logger.warning("could not count the stored spans", exc_info=True)
        for run_id, tenant_id in {(run_id, tenant_id) for run_id, tenant_id, _ in stored}:  # autocommit: visible now
            publish_spans_stored(run_id, tenant_id)
        for run_id in {run_id for run_id, _, ended in stored if ended}:  # the run ended: its rollups are final
            _materialize_soon(run_id)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass
