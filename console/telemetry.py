"""OpenTelemetry: one TracerProvider per process (web or worker), with a service name.

Each process hands its finished spans, in batches, to the span sinks apps registered (the traces
app's: stored in Postgres for the timeline and, when OTEL_EXPORTER_OTLP_ENDPOINT is set, put on the
outbox its span relay sends to the OTLP backend from a process of its own: traces.otlp).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

_lock = threading.Lock()
_provider: TracerProvider | None = None
_exporters: list[str] = []
_forced_ids: ContextVar[tuple[int, int] | None] = ContextVar("proctor_forced_ids", default=None)


class _Ids(RandomIdGenerator):
    """Random ids, except inside ``forced_ids``: a span recorded after the fact (a run's root,
    whose id its children already use) gets the trace and span id it must have."""

    def generate_trace_id(self) -> int:
        forced = _forced_ids.get()
        return forced[0] if forced else super().generate_trace_id()

    def generate_span_id(self) -> int:
        forced = _forced_ids.get()
        return forced[1] if forced else super().generate_span_id()


@contextmanager
def forced_ids(trace_id: int, span_id: int) -> Iterator[None]:
    token = _forced_ids.set((trace_id, span_id))
    try:
        yield
    finally:
        _forced_ids.reset(token)


def configure_tracing(role: str, *, exporters: dict[str, SpanExporter] | None = None) -> TracerProvider:
    """Idempotent: the first call in a process wins, later calls return the same provider.
    ``exporters`` (name → exporter) each get their own batching processor."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        from django.conf import settings

        resource = Resource.create({"service.name": f"{settings.OTEL_SERVICE_NAME}-{role}", "proctor.role": role})
        provider = TracerProvider(resource=resource, id_generator=_Ids())
        for name, exporter in (exporters or {}).items():
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=settings.SPAN_EXPORT_DELAY_MS,
                                                               max_export_batch_size=settings.SPAN_EXPORT_BATCH_SIZE))
            _exporters.append(name)
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def current_provider() -> TracerProvider | None:
    return _provider


def configured_exporters() -> list[str]:
    return list(_exporters)
