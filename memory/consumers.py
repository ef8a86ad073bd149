"""The Memory page's socket: /ws/t/<tenant>/memory/ sends the viewer's "To confirm" count at once and after
every change in the tenant's memories that could change it."""

from __future__ import annotations

from console.access import socket_access
from console.aio import socket_render
from console.sockets import LiveConsumer
from memory.live import memory_group, render_badge


class MemoryBadgeConsumer(LiveConsumer):
    async def connect(self):
        self.membership = await socket_access(self, section="memory")
        if self.membership is None:
            return
        await self.channel_layer.group_add(memory_group(self.membership.tenant_id), self.channel_name)
        await self.accept()
        await self.memory_changed({})

    async def disconnect(self, code):
        if getattr(self, "membership", None) is not None:
            await self.channel_layer.group_discard(memory_group(self.membership.tenant_id), self.channel_name)

    async def memory_changed(self, message):
        await self.send_json(await socket_render(render_badge)(membership=self.membership))

    layer_gap = memory_changed  # announcements may have been lost (console/channel_layer.py): counted again
