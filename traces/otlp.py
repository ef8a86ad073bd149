"""Spans to an OTLP backend, off the step's process.

Encoding spans as OTLP protobuf costs about 0.1 ms of Python a span; done by an exporter thread in
the worker it took the interpreter from the steps beside it (+20% on a step). So the processes that
make spans do not encode them: the database sink (traces.exporter), which serializes each batch
for its own INSERT anyway, appends the same JSON to a Redis list, the outbox, in one command. The
relay (``python manage.py relay_spans``, its own process) reads the outbox, rebuilds the spans and
sends them with the OpenTelemetry SDK's OTLP/HTTP exporter, so every ``OTEL_EXPORTER_OTLP_*``
setting (endpoint, headers, compression, timeout, certificates) means what it means in the SDK.

Nothing is taken off the outbox before the backend accepted it: a relay that stops, or a backend
that does not answer, leaves the batches waiting, and they go when it is back. One relay works at a
time (a lease in Redis; a second one waits to take over). If no relay drains it, the outbox keeps
the newest OTLP_OUTBOX_MAX_BATCHES batches and counts the ones it dropped; /healthz shows both.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence

from django.conf import settings
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from console.health import redis_client

logger = logging.getLogger(__name__)

OUTBOX = "proctor:otlp:outbox"  # list of batches, oldest first: {"resource": {...}, "spans": [row, ...]}
DROPPED = "proctor:otlp:dropped"  # batches the outbox dropped, full, since the counter was made
LEASE = "proctor:otlp:relay"  # the working relay's name; expires when it stops renewing it
LEASE_SECONDS = 15
SENT = "proctor:otlp:sent"  # when the relay last had the backend accept a batch, and how many spans in all
SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def relaying() -> bool:
    return bool(settings.OTEL_EXPORTER_OTLP_ENDPOINT)


# --- producing: in the processes that make spans, from the database sink's thread --------------------

def relay_fields(span: ReadableSpan) -> dict:
    """What OTLP needs of a span beyond the row the database stores (traces.exporter.span_row)."""
    fields = {"start_ns": span.start_time, "end_ns": span.end_time, "span_kind": span.kind.value,
              "status_code": span.status.status_code.value, "scope": span.instrumentation_scope.name
              if span.instrumentation_scope else ""}
    if span.status.description:
        fields["status_description"] = span.status.description
    if span.parent is not None and span.parent.is_remote:
        fields["parent_remote"] = True
    if span.events:
        fields["events"] = [{"name": e.name, "ns": e.timestamp, "attributes": dict(e.attributes or {})}
                            for e in span.events]
    return fields


def outbox_push(resource: Resource, rows_json: str) -> None:
    """One batch onto the outbox: ``rows_json`` is the JSON array of the batch's rows, already made."""
    batch = '{"resource":' + json.dumps(dict(resource.attributes), default=list) + ',"spans":' + rows_json + "}"
    client = redis_client()
    length = client.rpush(OUTBOX, batch)
    if length > settings.OTLP_OUTBOX_MAX_BATCHES:  # no relay is draining it: keep the newest
        over = length - settings.OTLP_OUTBOX_MAX_BATCHES
        pipe = client.pipeline(transaction=False)
        pipe.ltrim(OUTBOX, over, -1)
        pipe.incrby(DROPPED, over)
        pipe.execute()


# --- relaying: in its own process --------------------------------------------------------------------

def _attributes(raw: dict) -> dict:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()}


def spans_of(batch: dict) -> list[ReadableSpan]:
    """A batch from the outbox as the SDK's spans, ready for any SpanExporter."""
    resource = Resource(batch["resource"])
    scopes: dict[str, InstrumentationScope] = {}
    spans = []
    for row in batch["spans"]:
        trace_id = int(row["trace_id"], 16)
        parent = (SpanContext(trace_id, int(row["parent_span_id"], 16), is_remote=row.get("parent_remote", False),
                              trace_flags=SAMPLED) if row["parent_span_id"] else None)
        scope = scopes.setdefault(row["scope"], InstrumentationScope(row["scope"]))
        status = Status(StatusCode(row["status_code"]), row.get("status_description"))
        events = [Event(e["name"], _attributes(e["attributes"]), e["ns"]) for e in row.get("events", ())]
        spans.append(ReadableSpan(
            name=row["name"], context=SpanContext(trace_id, int(row["span_id"], 16), is_remote=False, trace_flags=SAMPLED),
            parent=parent, resource=resource, attributes=_attributes(row["attributes"]), events=events,
            kind=SpanKind(row["span_kind"]), instrumentation_scope=scope, status=status,
            start_time=row["start_ns"], end_time=row["end_ns"]))
    return spans


def relay_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def outbox_status() -> dict:
    """For /healthz: the batches waiting, the ones dropped, and when the relay last delivered."""
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.llen(OUTBOX)
    pipe.get(DROPPED)
    pipe.get(LEASE)
    pipe.hgetall(SENT)
    waiting, dropped, relay, sent = pipe.execute()
    status = {"waiting_batches": waiting, "dropped_batches": int(dropped or 0),
              "relay": relay.decode() if relay else None}
    if sent:
        status["last_sent_seconds_ago"] = round(time.time() - float(sent[b"at"]), 1)
        status["spans_sent"] = int(sent[b"spans"])
    status["status"] = "ok" if relay and waiting < settings.OTLP_OUTBOX_MAX_BATCHES // 2 else "down"
    if not relay:
        status["error"] = "no span relay is running (python manage.py relay_spans)"
    return status


class SpanRelay:
    """Takes batches off the outbox and sends them to the OTLP backend, oldest first, up to
    ``batches_per_export`` at a time. Call ``run`` until ``stop`` is set."""

    def __init__(self, exporter=None, *, name: str | None = None, stop: threading.Event | None = None,
                 batches_per_export: int = 20, idle_wait: float = 0.2, retry_wait: float = 2.0):
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_* from the environment, as the SDK reads them
        self.exporter = exporter
        self.name = name or relay_name()
        self.batches_per_export = batches_per_export
        self.idle_wait = idle_wait
        self.retry_wait = retry_wait
        self.stop = stop or threading.Event()

    def hold_lease(self) -> bool:
        """Take the lease, or renew it if it is ours: True while this relay is the one that works."""
        client = redis_client()
        if client.set(LEASE, self.name, nx=True, ex=LEASE_SECONDS):
            logger.info("span relay %s is the working relay", self.name)
            return True
        if (client.get(LEASE) or b"").decode() == self.name:
            client.expire(LEASE, LEASE_SECONDS)
            return True
        return False

    def release_lease(self) -> None:
        client = redis_client()
        if (client.get(LEASE) or b"").decode() == self.name:
            client.delete(LEASE)

    def relay_once(self) -> int | None:
        """Send the oldest waiting batches; returns how many batches left the outbox (0: none waiting), or
        None when the backend refused them and they wait for the next try."""
        client = redis_client()
        raw = client.lrange(OUTBOX, 0, self.batches_per_export - 1)
        if not raw:
            return 0
        spans: list[ReadableSpan] = []
        for item in raw:
            try:
                spans.extend(spans_of(json.loads(item)))
            except (ValueError, KeyError, TypeError):  # not a batch this code wrote: drop it, keep the rest
                logger.warning("span relay: dropped a malformed batch from the outbox", exc_info=True)
        if spans and not self._export(spans):
            return None
        pipe = client.pipeline(transaction=False)
        pipe.ltrim(OUTBOX, len(raw), -1)  # only this relay takes from the head (the lease); producers append
        pipe.hset(SENT, "at", f"{time.time():.3f}")
        pipe.hincrby(SENT, "spans", len(spans))
        pipe.execute()
        return len(raw)

    def _export(self, spans: Sequence[ReadableSpan]) -> bool:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self.exporter.export(spans)
        except Exception:
            logger.warning("span relay: the OTLP export failed", exc_info=True)
            return False
        if result is not SpanExportResult.SUCCESS:
            logger.warning("span relay: the OTLP backend did not accept %d spans; they wait for the next try", len(spans))
            return False
        return True

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if not self.hold_lease():
                    self.stop.wait(LEASE_SECONDS / 3)  # another relay works; take over when its lease lapses
                    continue
                sent = self.relay_once()
                if not sent:  # refused: try again after a while; nothing waiting: look again soon
                    self.stop.wait(self.retry_wait if sent is None else self.idle_wait)
            except Exception:  # Redis away: try again shortly, never die of it
                logger.warning("span relay: Redis is unreachable", exc_info=True)
                self.stop.wait(self.retry_wait)
        self.release_lease()
        self.exporter.shutdown()
