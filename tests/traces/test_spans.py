"""The traces app: its exporter is the runtime's database span sink; spans are read per tenant."""

from datetime import timedelta

from django.utils import timezone
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from agents.hooks import span_sinks
from agents.services import run_start
from traces.exporter import DatabaseSpanExporter
from traces.models import Span
from traces.selectors import span_list


def test_the_database_exporter_is_registered_as_a_span_sink():
    assert isinstance(span_sinks()["database"], DatabaseSpanExporter)


def test_the_exporter_stores_a_runs_spans_with_its_tenant_and_skips_other_traces(cast, renewals):
    run = run_start(tenant=cast.acme, agent=renewals, goal="ACME-042 renewal", requested_by=cast.member)
    provider = TracerProvider()  # local: the process's own provider stays as it is
    provider.add_span_processor(SimpleSpanProcessor(DatabaseSpanExporter()))
    tracer = provider.get_tracer("test")
    def in_trace(trace_id: str):
        parent = SpanContext(trace_id=int(trace_id, 16), span_id=1, is_remote=True, trace_flags=TraceFlags(1))
        return trace.set_span_in_context(NonRecordingSpan(parent))

    with tracer.start_as_current_span("chat demo-planner", context=in_trace(run.trace_id),
                                      attributes={"gen_ai.operation.name": "chat"}):
        pass
    with tracer.start_as_current_span("chat elsewhere", context=in_trace("f" * 32)):
        pass
    provider.shutdown()

    [span] = Span.objects.all()
    assert (span.tenant_id, span.run_id, span.trace_id, span.kind) == (cast.acme.pk, run.pk, run.trace_id, "model")


def test_span_list_is_the_runs_spans_in_start_order_and_none_for_other_tenants(cast, renewals):
    run = run_start(tenant=cast.acme, agent=renewals, goal="ACME-042 renewal", requested_by=cast.member)
    start = timezone.now()
    for n, offset in enumerate([2, 0, 1]):
        Span.objects.create(tenant=cast.acme, run=run, trace_id=run.trace_id, span_id=f"{n:016x}", name=f"step {offset}",
                            kind="step", started_at=start + timedelta(seconds=offset),
                            ended_at=start + timedelta(seconds=offset + 1))
    assert [s.name for s in span_list(tenant=cast.acme, run=run)] == ["step 0", "step 1", "step 2"]
    assert span_list(tenant=cast.globex, run=run) == []
