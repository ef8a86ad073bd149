"""Websockets for the run page and the runs list. Thin: access check, group join, forward."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from agents.live import (render_run_row, render_run_rows, render_run_update, run_group, shared_frames, tenant_group,
                         timeline_update)
from agents.selectors import EVENTS_PAGE, run_event_seq, run_filters, run_get, run_page, run_row
from console.access import CLOSE_NOT_FOUND, socket_access
from console.aio import socket_render
from console.input import strict_int
from console.roles import can_open
from console.sockets import LiveConsumer


async def socket_run(consumer, *, section: str):
    """The membership and the run a socket's URL names (its tenant and run number), or (None, None) after
    closing it: 4404 for an outsider or a run not in the tenant, 4403 for a role that may not open ``section``."""
    membership = await socket_access(consumer, section=section)
    if membership is None:
        return None, None
    run = await database_sync_to_async(run_row)(tenant=membership.tenant,
                                                number=consumer.scope["url_route"]["kwargs"]["run_number"])
    if run is None:
        await consumer.close(code=CLOSE_NOT_FOUND)
        return None, None
    return membership, run


class RunConsumer(LiveConsumer):
    """/ws/t/<tenant>/runs/<number>/?after=<seq>: replays what the client missed, then streams."""

    async def connect(self):
        membership, run = await socket_run(self, section="runs")
        if run is None:
            return
        self.run_id, self.tenant = run.pk, membership.tenant
        self.can_decide = can_open(membership.role, "approvals")
        after = parse_qs(self.scope["query_string"].decode()).get("after", ["0"])[0]
        self.last_seq = max(0, strict_int(after, 0))  # ASCII digits only: "²" passes isdigit() and fails int()
        await self.channel_layer.group_add(run_group(self.run_id), self.channel_name)
        await self.accept()
        # Read after joining the group: a commit from here on is announced to this socket, and the
        # catch-up reaches at least this far (a shared frame that stops short is not reused).
        await self.layer_gap({})

    async def disconnect(self, code):
        if hasattr(self, "run_id"):
            await self.channel_layer.group_discard(run_group(self.run_id), self.channel_name)

    async def run_changed(self, message):
        seq = message["seq"]
        if seq <= self.last_seq:
            return
        update = await timeline_update(self.run_id, self.last_seq, message)  # the commit changed only the timeline
        if update is not None:
            self.last_seq = seq
            await self.send(text_data=update.text)
            return
        await self._catch_up(heard=seq)

    async def layer_gap(self, message):
        """What the database has past this socket's seq: on connecting, and when announcements may have been
        lost (console/channel_layer.py)."""
        await self._catch_up(heard=await database_sync_to_async(run_event_seq)(tenant=self.tenant, run_id=self.run_id))

    async def _catch_up(self, heard: int = 0):
        while True:  # one frame per change; more only while a full page of events came back
            update = await shared_frames.frame((self.run_id, self.last_seq, self.can_decide), heard=heard,
                                               render=socket_render(self._render))
            if update["events"]:
                self.last_seq = update["seq"]
                await self.send(text_data=update.text)
            if len(update["events"]) < EVENTS_PAGE:
                return

    def _render(self):
        """The frame from this socket's seq, for its role's view (shared with every socket of the same; see SharedFrames)."""
        return render_run_update(run_get(tenant=self.tenant, run_id=self.run_id), self.last_seq, can_decide=self.can_decide)


class RunListConsumer(LiveConsumer):
    """/ws/t/<tenant>/runs/?q=&status=&agent=&requester=: one row re-rendered whenever a run of the tenant changes; with
    catch_up=1 (a reconnect: changes may have been missed) the whole list first."""

    async def connect(self):
        membership = await socket_access(self, section="runs")
        if membership is None:
            return
        self.tenant = membership.tenant
        query = {k: v[0] for k, v in parse_qs(self.scope["query_string"].decode()).items()}
        self.filters = run_filters(query)
        await self.channel_layer.group_add(tenant_group(self.tenant.id), self.channel_name)
        await self.accept()
        if query.get("catch_up"):  # after joining the group: a change from now on is sent again, never lost
            await self.layer_gap({})

    async def disconnect(self, code):
        if hasattr(self, "tenant"):
            await self.channel_layer.group_discard(tenant_group(self.tenant.id), self.channel_name)

    async def runs_changed(self, message):
        row = await socket_render(self._render)(message["run_id"])
        if row:
            await self.send_json(row)

    async def layer_gap(self, message):
        """The whole list again: changes may have gone unannounced (a reconnect, or console/channel_layer.py)."""
        await self.send_json(await socket_render(self._render_rows)())

    def _render(self, run_id):
        """The changed run's row, if it belongs in this list (its filters)."""
        run = run_row(tenant=self.tenant, run_id=run_id, filters=self.filters)
        return render_run_row(run) if run else None

    def _render_rows(self):
        return render_run_rows(run_page(tenant=self.tenant, filters=self.filters)[0])
