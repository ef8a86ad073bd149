"""The timeline's socket. Thin: access check, group join, forward "new spans stored"."""

from __future__ import annotations

from agents.consumers import socket_run
from console.sockets import LiveConsumer
from traces.live import trace_group


class TraceConsumer(LiveConsumer):
    """/ws/t/<tenant>/traces/<number>/: says when the exporter stored new spans of the run; the page asks
    for the skeleton again (the database is the truth, rollups included)."""

    async def connect(self):
        _, run = await socket_run(self, section="traces")
        if run is None:
            return
        self.run_id = run.pk
        await self.channel_layer.group_add(trace_group(self.run_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "run_id"):
            await self.channel_layer.group_discard(trace_group(self.run_id), self.channel_name)

    async def spans_stored(self, message):
        await self.send_json({"stored": True})

    layer_gap = spans_stored  # announcements may have been lost (console/channel_layer.py): the page reads again
