"""Traces reach any OTLP/HTTP backend when one is configured: a real HTTP receiver in this process gets
a worker's spans of a demo run, sent by a real span relay process, and decodes them (protobuf), with
the GenAI attributes. The workers only put spans on the outbox; a relay that stops loses none."""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agents.models import RunStatus
from agents.services import run_start
from tests.agents.test_runs_with_worker import status_of
from tests.conftest import spawn, subprocess_env, wait_for
from tests.factories import make_looper
from traces import otlp


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


@pytest.fixture
def receiver():
    """An OTLP/HTTP receiver: POST /v1/traces with an ExportTraceServiceRequest, answered 200 once its gate is
    open (open unless a test closes it: a backend that does not answer)."""
    received: list[dict] = []
    gate = threading.Event()
    gate.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            gate.wait(60)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                service = {a.key: _value(a.value) for a in resource_spans.resource.attributes}.get("service.name")
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        received.append({"service": service, "path": self.path, "name": span.name,
                                         "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                         "attributes": {a.key: _value(a.value) for a in span.attributes}})
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received, gate
    gate.set()
    server.shutdown()


@pytest.fixture
def start_relay(transactional_db, tmp_path, empty_outbox):
    """Start `python manage.py relay_spans` for an endpoint; stopped (SIGTERM) after the test."""
    started = []

    def start(url: str, name: str = "relay"):
        env = {**subprocess_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_EXPORTER_OTLP_TIMEOUT": "2"}
        proc = spawn([sys.executable, "manage.py", "relay_spans"], tmp_path / f"{name}-{len(started)}.log", env)
        started.append(proc)
        wait_for(lambda: "started" in proc.output() or proc.process.poll() is not None, 30, message="the span relay")
        assert proc.process.poll() is None, proc.output()
        return proc

    yield start
    for proc in started:
        proc.stop()


WORKER_ENV = {"OTEL_BSP_SCHEDULE_DELAY": "100", "SPAN_EXPORT_DELAY_MS": "100"}


def test_a_workers_spans_are_exported_over_otlp_with_genai_attributes(cast, start_worker, start_relay, receiver):
    url, received, _ = receiver
    start_worker(env={"OTEL_EXPORTER_OTLP_ENDPOINT": url, **WORKER_ENV})
    start_relay(url)
    looper = make_looper(cast.acme)
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 2 times", requested_by=cast.member)
    status_of(run, RunStatus.COMPLETED)

    def exported():
        mine = [s for s in received if s["trace_id"] == run.trace_id]
        return {s["attributes"].get("proctor.span.kind") for s in mine} >= {"run", "step", "model", "tool"}  # no checkpoint: noop leaves the state as it was
    wait_for(exported, 20, message="the run's spans at the OTLP receiver")

    spans = [s for s in received if s["trace_id"] == run.trace_id]
    assert {s["path"] for s in spans} == {"/v1/traces"} and {s["service"] for s in spans} == {"proctor-worker"}
    [chat, *_] = [s["attributes"] for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert chat["gen_ai.provider.name"] == "demo" and chat["gen_ai.request.model"]
    assert {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.reasoning.output_tokens"} <= chat.keys()
    tools = [s["attributes"] for s in spans if s["attributes"].get("gen_ai.operation.name") == "execute_tool"]
    assert tools and all(t["gen_ai.tool.name"] == "noop" and t["gen_ai.tool.call.id"] for t in tools)
    [root] = [s["attributes"] for s in spans if s["attributes"].get("proctor.span.kind") == "run"]
    assert root["gen_ai.operation.name"] == "invoke_agent" and root["gen_ai.agent.name"] == "Looper"
    assert root["gen_ai.conversation.id"] == run.trace_id


def _tool_spans_at(received, run) -> int:
    """Distinct: OTLP delivery is at least once (a request the relay gave up on may still be read)."""
    return len({s["span_id"] for s in received if s["trace_id"] == run.trace_id
                and s["attributes"].get("proctor.span.kind") == "tool"})


def test_a_backend_that_does_not_answer_holds_up_no_step_and_not_the_timeline(cast, start_worker, start_relay, receiver):
    """While the backend holds every request, a run still takes all its steps and the timeline still gets
    its spans; the spans wait on the outbox, and once the backend answers, they arrive there too."""
    from traces.models import Span

    url, received, gate = receiver
    gate.clear()
    start_worker(env={"OTEL_EXPORTER_OTLP_ENDPOINT": url, **WORKER_ENV})
    start_relay(url)
    looper = make_looper(cast.acme)
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 20 times", requested_by=cast.member)
    status_of(run, RunStatus.COMPLETED)
    wait_for(lambda: Span.objects.filter(run=run, kind="run").exists(), 20, message="the run's spans on its timeline")
    assert Span.objects.filter(run=run, kind="tool").count() == 20
    assert received == []  # the backend has answered nothing yet
    assert otlp.outbox_status()["waiting_batches"] > 0
    gate.set()
    wait_for(lambda: _tool_spans_at(received, run) == 20, 30, message="the run's tool spans at the OTLP receiver once it answers")
    wait_for(lambda: otlp.outbox_status()["waiting_batches"] == 0, 10, message="the outbox drained")


def test_spans_made_while_no_relay_runs_are_sent_by_the_next_relay(cast, start_worker, start_relay, receiver):
    """The relay stopped (a deploy, a crash): the run's spans wait on the outbox, /healthz says no relay
    runs, and the relay started afterwards sends every one of them."""
    url, received, _ = receiver
    first = start_relay(url, "first")
    first.stop()
    start_worker(env={"OTEL_EXPORTER_OTLP_ENDPOINT": url, **WORKER_ENV})
    looper = make_looper(cast.acme)
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 5 times", requested_by=cast.member)
    status_of(run, RunStatus.COMPLETED)
    wait_for(lambda: otlp.outbox_status()["waiting_batches"] > 0, 10, message="spans on the outbox")
    status = otlp.outbox_status()
    assert status["status"] == "down" and "no span relay is running" in status["error"]
    assert received == []
    start_relay(url, "second")
    wait_for(lambda: _tool_spans_at(received, run) == 5, 30, message="the waiting spans at the receiver")
    wait_for(lambda: otlp.outbox_status()["status"] == "ok", 10, message="the relay reported healthy")
    assert otlp.outbox_status()["spans_sent"] >= 5
