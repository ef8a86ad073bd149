"""The reviewer queue's socket: the open count (the navigation badge) and, on the queue page, the list."""

from __future__ import annotations

import asyncio

from approvals.live import queue_group, render_queue_update
from approvals.selectors import queue_filters
from console.access import socket_access
from console.aio import socket_render
from console.input import CLOSE_BAD_REQUEST, InputRefused, query_values
from console.sockets import LiveConsumer


class ApprovalQueueConsumer(LiveConsumer):
    """/ws/t/<tenant>/approvals/?badge=1 (count only) or ?sort=&tool=&agent=&min_risk=&mine= (the list too);
    with catch_up=1 (a reconnect) it sends what the viewer sees at once, then on every change.
    Changes that come while the socket renders collapse into one more render (a sweep that escalates
    hundreds of requests costs each socket two renders, not hundreds)."""

    refresh: asyncio.Task | None = None
    stale = False

    async def connect(self):
        self.membership = await socket_access(self, section="approvals")
        if self.membership is None:
            return
        try:
            query = query_values(self.scope["query_string"])
        except InputRefused:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.filters = None if query.get("badge") else queue_filters(query)
        await self.channel_layer.group_add(queue_group(self.membership.tenant_id), self.channel_name)
        await self.accept()
        if query.get("catch_up"):  # a reconnect: the queue may have changed while the socket was away
            await self.queue_changed({})

    async def disconnect(self, code):
        if self.refresh is not None:
            self.refresh.cancel()
        if getattr(self, "membership", None) is not None:
            await self.channel_layer.group_discard(queue_group(self.membership.tenant_id), self.channel_name)

    async def queue_changed(self, message):
        self.stale = True
        if self.refresh is None or self.refresh.done():
            self.refresh = asyncio.ensure_future(self._refresh())

    layer_gap = queue_changed  # announcements may have been lost (console/channel_layer.py): rendered again

    async def _refresh(self):
        while self.stale:
            self.stale = False
            await self.send_json(await socket_render(render_queue_update)(
                membership=self.membership, filters=self.filters))
