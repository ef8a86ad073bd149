"""OpenTelemetry: one TracerProvider per process (web or worker), with a service name.

Spans go to OTLP over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set. The exporter that
stores spans in Postgres for the console's timeline is added by the agents app.
"""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_lock = threading.Lock()
_provider: TracerProvider | None = None
_exporters: list[str] = []


def configure_tracing(role: str, *, extra_processors: list[SpanProcessor] | None = None) -> TracerProvider:
    """Idempotent: the first call in a process wins, later calls return the same provider."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        from django.conf import settings

        resource = Resource.create({"service.name": f"{settings.OTEL_SERVICE_NAME}-{role}", "proctor.role": role})
        provider = TracerProvider(resource=resource)
        if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            _exporters.append("otlp")
        for processor in extra_processors or []:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def current_provider() -> TracerProvider | None:
    return _provider


def configured_exporters() -> list[str]:
    return list(_exporters)
