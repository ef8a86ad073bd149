"""Live timelines: the exporter says "run X has new spans"; each timeline socket asks for the
skeleton again (the database is the truth, rollups included), at most once per second per socket."""

from __future__ import annotations

from channels.layers import get_channel_layer

from console import aio


def trace_group(run_id: int) -> str:
    return f"trace-{run_id}"


def publish_spans_stored(run_id: int, tenant_id: int) -> None:
    """From the exporter's thread, without waiting: the announcement is sent on the background loop."""
    aio.submit(get_channel_layer().group_send(trace_group(run_id), {"type": "spans.stored", "run_id": run_id}),
               f"announce new spans of run {run_id}")
