"""The database span sink: finished spans of runs into the Span table, in batches. Registered into
the runtime's span sinks (agents.hooks) by traces.apps; every process's TracerProvider exports to it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import DatabaseError, close_old_connections
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


class DatabaseSpanExporter(SpanExporter):
    """Writes a batch of finished spans to the Span table in one INSERT. Spans of traces that
    belong to no run are not stored here (OTLP, when configured, still gets them)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            trace_ids = {format(s.context.trace_id, "032x") for s in spans}
            # Across tenants by design (one exporter per process): each span gets its run's tenant.
            runs = {trace_id: (run_id, tenant_id) for trace_id, run_id, tenant_id in
                    Run.objects.filter(trace_id__in=trace_ids).values_list("trace_id", "id", "tenant_id")}
            rows = []
            for s in spans:
                trace_id = format(s.context.trace_id, "032x")
                if trace_id not in runs:
                    continue
                run_id, tenant_id = runs[trace_id]
                rows.append(Span(
                    tenant_id=tenant_id, run_id=run_id, trace_id=trace_id, span_id=format(s.context.span_id, "016x"),
                    parent_span_id=format(s.parent.span_id, "016x") if s.parent else "", name=s.name[:200],
                    kind=_kind(s), status=s.status.status_code.name.lower(),
                    started_at=datetime.fromtimestamp(s.start_time / 1e9, tz=UTC),
                    ended_at=datetime.fromtimestamp(s.end_time / 1e9, tz=UTC),
                    attributes=dict(s.attributes or {}),
                ))
            Span.objects.bulk_create(rows, ignore_conflicts=True)
            return SpanExportResult.SUCCESS
        except DatabaseError:
            logger.warning("could not store %d spans", len(spans), exc_info=True)
            close_old_connections()
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass
