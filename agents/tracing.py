"""Traces: one per run. Its id is ``Run.trace_id``; each step is a span, with a span per model
call (GenAI semantic-convention attributes), per tool call, its budget check and its checkpoint inside it.

Every span says what it is in ``proctor.span.kind`` (run, step, model, tool, approval, memory_search,
memory_write, checkpoint, budget); other apps record theirs (an approval's wait, a memory search) with
``record_span`` after the fact, or ``child_span`` inside a step. docs/ARCHITECTURE.md (Traces) lists
the names and attributes of each kind.

The runtime only produces its spans; it does not store them. They are ordinary OpenTelemetry
spans, so an OTLP collector receives them when one is configured, and every span sink registered
in agents.hooks (the traces app's database exporter) gets them, in batches, from the
BatchSpanProcessor's thread: a step never waits for its spans to be written. The run itself is the
trace's root span (id derived from the trace id), recorded when the run ends.

Without a configured TracerProvider (tests that call the services in-process) every span
here is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from console.telemetry import forced_ids

tracer = trace.get_tracer("proctor.agents")


def root_span_id(trace_id: str) -> int:
    """The run's own span: its id is derived from the trace id, so every step can name it as parent."""
    return int(trace_id[:16], 16) or 1


def _run_parent(trace_id: str) -> otel_context.Context:
    parent = SpanContext(trace_id=int(trace_id, 16), span_id=root_span_id(trace_id), is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


KIND = "proctor.span.kind"


@contextmanager
def step_span(*, trace_id: str, run_id: int, step: int, worker: str) -> Iterator[trace.Span | None]:
    """The span of one step of a run (the model call and tool call it makes are its children)."""
    if not trace_id:
        yield None
        return
    attributes = {KIND: "step", "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": trace_id,
                  "proctor.run_id": run_id, "proctor.step": step, "proctor.worker": worker}
    with tracer.start_as_current_span(f"step {step}", context=_run_parent(trace_id), attributes=attributes) as span:
        yield span


@contextmanager
def model_call_span(*, provider: str, model: str) -> Iterator[trace.Span]:
    """One attempt at a model: GenAI client span named ``chat {model}``."""
    attributes = {KIND: "model", "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                  "gen_ai.request.model": model}
    with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes,
                                      record_exception=False, set_status_on_exception=False) as span:
        yield span


def model_call_finished(span: trace.Span, *, response_model: str, input_tokens: int, output_tokens: int,
                        cached_tokens: int = 0, cache_write_tokens: int = 0, reasoning_tokens: int = 0,
                        cost_usd: float = 0.0, finish: str = "stop") -> None:
    """``input_tokens`` includes the cached ones (as the conventions count them); the cost is the
    price at call time (the ModelCall row keeps the price snapshot)."""
    span.set_attributes({"gen_ai.response.model": response_model, "gen_ai.usage.input_tokens": input_tokens,
                         "gen_ai.usage.output_tokens": output_tokens, "gen_ai.usage.cache_read.input_tokens": cached_tokens,
                         "gen_ai.usage.cache_creation.input_tokens": cache_write_tokens,
                         "gen_ai.usage.reasoning.output_tokens": reasoning_tokens, "proctor.cost_usd": cost_usd,
                         "gen_ai.response.finish_reasons": [finish]})


def span_failed(span: trace.Span | None, error_type: str, message: str) -> None:
    if span is None:
        return
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message[:200]))


@contextmanager
def tool_span(*, tool: str, call_id: str, risk: int) -> Iterator[trace.Span]:
    attributes = {KIND: "tool", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                  "gen_ai.tool.call.id": call_id, "gen_ai.tool.type": "function", "proctor.tool.risk": risk}
    with tracer.start_as_current_span(f"execute_tool {tool}", kind=SpanKind.INTERNAL, attributes=attributes) as span:
        yield span


@contextmanager
def child_span(kind: str, name: str, attributes: dict | None = None) -> Iterator[trace.Span]:
    """A span of the given kind inside the current one (a step's budget check, its checkpoint, a memory
    search made while the step runs)."""
    with tracer.start_as_current_span(name, attributes={KIND: kind, **(attributes or {})}) as span:
        yield span


def record_span(*, trace_id: str, kind: str, name: str, started: datetime, ended: datetime, attributes: dict,
                error: str = "") -> None:
    """A span recorded after the fact, under the run's own span (an approval's wait: from the request to
    the decision). No-op without a trace."""
    if not trace_id:
        return
    span = tracer.start_span(name, context=_run_parent(trace_id), start_time=_ns(started),
                             attributes={KIND: kind, **attributes})
    if error:
        span.set_status(Status(StatusCode.ERROR, error[:200]))
    span.end(end_time=_ns(max(started, ended)))


def record_run_span(*, trace_id: str, run_id: int, agent: str, status: str, started: datetime, ended: datetime,
                    agent_id: int | None = None, agent_version: int | None = None) -> None:
    """The trace's root: the whole run, from creation to its end, with the id every step named as parent."""
    if not trace_id:
        return
    attributes = {KIND: "run", "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
                  "gen_ai.conversation.id": trace_id, "proctor.run_id": run_id, "proctor.status": status}
    if agent_id is not None:
        attributes.update({"gen_ai.agent.id": str(agent_id), "gen_ai.agent.version": str(agent_version)})
    with forced_ids(int(trace_id, 16), root_span_id(trace_id)):
        span = tracer.start_span(f"invoke_agent {agent}", context=otel_context.Context(),
                                 start_time=_ns(started), attributes=attributes)
    if status == "failed":
        span.set_status(Status(StatusCode.ERROR, "run failed"))
    span.end(end_time=_ns(ended))


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
