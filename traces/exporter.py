"""The database span sink: finished spans of runs into the Span table, in batches. Registered into
the runtime's span sinks (agents.hooks) by traces.apps; every process's TracerProvider exports to it."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import DatabaseError, close_old_connections, connection
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agents.models import Run
from traces.models import Span

logger = logging.getLogger(__name__)

KINDS = {"chat": "model", "execute_tool": "tool", "invoke_agent": "step"}


def _kind(span: ReadableSpan) -> str:
    operation = (span.attributes or {}).get("gen_ai.operation.name", "")
    if operation == "invoke_agent" and span.parent is None:
        return "run"
    return KINDS.get(operation, "other")


# One statement a batch, resolving each span's run and tenant by its trace id in the database: no
# model instances, one JSON parameter (an export of hundreds of spans holds the process's
# interpreter for a fraction of what building ORM rows took, so the steps beside it are not held up).
INSERT = f"""
    INSERT INTO {Span._meta.db_table} (tenant_id, run_id, trace_id, span_id, parent_span_id, name, kind, started_at,
                                      ended_at, status, attributes)
    SELECT r.tenant_id, r.id, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.started_at, s.ended_at,
           s.status, s.attributes
      FROM json_to_recordset(%s) AS s(trace_id text, span_id text, parent_span_id text, name text, kind text,
                                      started_at timestamptz, ended_at timestamptz, status text, attributes jsonb)
      JOIN {Run._meta.db_table} r ON r.trace_id = s.trace_id
        ON CONFLICT (trace_id, span_id) DO NOTHING
"""


def _iso(nanoseconds: int) -> str:
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC).isoformat()


class DatabaseSpanExporter(SpanExporter):
    """Writes a batch of finished spans to the Span table in one INSERT. Spans of traces that
    belong to no run are not stored here (OTLP, when configured, still gets them). Across tenants by
    design (one exporter per process): each span gets its run's tenant."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [{"trace_id": format(s.context.trace_id, "032x"), "span_id": format(s.context.span_id, "016x"),
                 "parent_span_id": format(s.parent.span_id, "016x") if s.parent else "", "name": s.name[:200],
                 "kind": _kind(s), "status": s.status.status_code.name.lower(), "started_at": _iso(s.start_time),
                 "ended_at": _iso(s.end_time), "attributes": dict(s.attributes or {})} for s in spans]
        try:
            with connection.cursor() as cursor:
                cursor.execute(INSERT, [json.dumps(rows, default=list, separators=(",", ":"))])
            return SpanExportResult.SUCCESS
        except DatabaseError:
            logger.warning("could not store %d spans", len(spans), exc_info=True)
            close_old_connections()
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass
