"""The OTLP outbox and relay in this process: a span comes off the outbox as the span that went on
(the same OTLP protobuf), one relay works at a time, nothing leaves the outbox before the backend
accepted it, and a full outbox keeps the newest batches and counts what it dropped."""

import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, set_span_in_context

from console.health import redis_client
from traces import otlp
from traces.exporter import span_row


pytestmark = pytest.mark.usefixtures("empty_outbox")


def finished_spans() -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "proctor-worker", "proctor.role": "worker"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("proctor.agents")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracer.start_as_current_span("step 1", context=set_span_in_context(NonRecordingSpan(remote)),
                                      attributes={"proctor.span.kind": "step", "proctor.step": 1}):
        with tracer.start_as_current_span("chat demo", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 12, "proctor.cost_usd": 0.0025,
                "gen_ai.response.finish_reasons": ("tool_call",), "proctor.cached": False}) as chat:
            chat.add_event("retry", {"attempt": 2})
            chat.set_status(Status(StatusCode.ERROR, "the provider answered 429"))
    return list(memory.get_finished_spans())


def batch_of(spans) -> dict:
    rows = json.dumps([span_row(s) | otlp.relay_fields(s) for s in spans], default=list, separators=(",", ":"))
    otlp.outbox_push(spans[0].resource, rows)
    raw = redis_client().lindex(otlp.OUTBOX, -1)
    return json.loads(raw)


def test_a_span_off_the_outbox_encodes_to_the_same_otlp_as_the_span_that_went_on():
    spans = finished_spans()
    rebuilt = otlp.spans_of(batch_of(spans))
    assert encode_spans(rebuilt).SerializeToString(deterministic=True) == \
        encode_spans(spans).SerializeToString(deterministic=True)


class Backend(SpanExporter):
    """The SDK's exporter interface, answering as told: what a real OTLP backend would accept or refuse."""

    def __init__(self):
        self.accepting = True
        self.spans = []

    def export(self, spans):
        if not self.accepting:
            return SpanExportResult.FAILURE
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_nothing_leaves_the_outbox_before_the_backend_accepted_it():
    backend = Backend()
    relay = otlp.SpanRelay(backend, name="r1")
    batch_of(finished_spans())
    backend.accepting = False
    assert relay.relay_once() is None and redis_client().llen(otlp.OUTBOX) == 1
    backend.accepting = True
    assert relay.relay_once() == 1 and redis_client().llen(otlp.OUTBOX) == 0
    assert [s.name for s in backend.spans] == ["chat demo", "step 1"]
    assert otlp.outbox_status()["spans_sent"] == 2


def test_a_malformed_batch_is_dropped_and_the_rest_still_go():
    backend = Backend()
    redis_client().rpush(otlp.OUTBOX, b"not json")
    batch_of(finished_spans())
    assert otlp.SpanRelay(backend, name="r1").relay_once() == 2
    assert len(backend.spans) == 2 and redis_client().llen(otlp.OUTBOX) == 0


def test_one_relay_works_at_a_time_and_another_takes_over_when_it_stops():
    first, second = otlp.SpanRelay(Backend(), name="first"), otlp.SpanRelay(Backend(), name="second")
    assert first.hold_lease() and not second.hold_lease()
    assert first.hold_lease()  # renewing its own
    assert otlp.outbox_status()["relay"] == "first"
    first.release_lease()
    assert second.hold_lease() and not first.hold_lease()


def test_a_full_outbox_keeps_the_newest_batches_and_counts_the_dropped(settings):
    settings.OTLP_OUTBOX_MAX_BATCHES = 3
    spans = finished_spans()
    for number in range(5):
        otlp.outbox_push(spans[0].resource, json.dumps([{"n": number}]))
    kept = [json.loads(raw)["spans"][0]["n"] for raw in redis_client().lrange(otlp.OUTBOX, 0, -1)]
    assert kept == [2, 3, 4]
    status = otlp.outbox_status()
    assert status["dropped_batches"] == 2 and status["status"] == "down"


def test_healthz_has_an_otlp_check_only_when_otlp_export_is_on():
    import subprocess
    import sys

    from console.devstack import ROOT
    from tests.conftest import subprocess_env

    probe = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'console.settings'); django.setup(); "
             "from console.health import health_report; print(sorted(health_report()['checks']))")

    def checks(**env) -> str:
        return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**subprocess_env(), **env},
                              capture_output=True, text=True, check=True).stdout.strip()

    assert "otlp" not in checks(OTEL_EXPORTER_OTLP_ENDPOINT="")
    assert "'otlp'" in checks(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
