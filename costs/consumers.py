"""The Costs dashboard's socket: "spend changed" for the tenant's finance and admin members."""

from __future__ import annotations

from console.access import socket_access
from console.sockets import LiveConsumer
from costs.live import costs_group


class SpendConsumer(LiveConsumer):
    """/ws/t/<tenant>/costs/: a message each time the tenant's spend changed (at most about one a second);
    the page then re-fetches its panels. Outsiders are refused with 4404, other roles with 4403."""

    membership = None

    async def connect(self):
        self.membership = await socket_access(self, section="costs")
        if self.membership is None:
            return
        await self.channel_layer.group_add(costs_group(self.membership.tenant_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.membership is not None:
            await self.channel_layer.group_discard(costs_group(self.membership.tenant_id), self.channel_name)

    async def spend_changed(self, message):
        await self.send_json({"type": "spend.changed"})

    layer_gap = spend_changed  # announcements may have been lost (console/channel_layer.py): the page reads again
