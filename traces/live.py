"""Live timelines: the exporter says "run X has new spans"; each timeline socket asks for the
skeleton again (the database is the truth, rollups included), at most once per second per socket."""

from __future__ import annotations

from channels.layers import get_channel_layer

from console import aio
from console.health import redis_client

SPANS_STORED = "proctor:trace-spans:{run_id}"  # how many spans the exporter stored for the run, ever


def spans_stored_count(run_id: int) -> int:
    """The run's stored-span counter: it names the version of its skeleton (traces.selectors)."""
    return int(redis_client().get(SPANS_STORED.format(run_id=run_id)) or 0)


def spans_stored_add(counts: dict[int, int]) -> None:
    """After a batch is stored: each run's counter rises by the spans stored for it."""
    pipe = redis_client().pipeline(transaction=False)
    for run_id, count in counts.items():
        pipe.incrby(SPANS_STORED.format(run_id=run_id), count)
    pipe.execute()


def trace_group(run_id: int) -> str:
    return f"trace-{run_id}"


def publish_spans_stored(run_id: int, tenant_id: int) -> None:
    """From the exporter's thread, without waiting: the announcement is sent on the background loop."""
    aio.submit(get_channel_layer().group_send(trace_group(run_id), {"type": "spans.stored", "run_id": run_id}),
               f"announce new spans of run {run_id}")
