"""The base of the console's websocket consumers."""

from __future__ import annotations

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """A JSON websocket consumer whose messages are handled on the event loop as they come.

    Channels (4.2 and later) first hands every message, for every socket, to the one thread that
    synchronous views share under ASGI, to close that thread's stale database connections, in case the
    handler uses the async ORM there. Ours never do: their reads go through ``database_sync_to_async`` or
    ``console.aio.socket_render``, which close stale connections of the thread they run on. The hand-off was
    only a wait: behind whatever view that thread was running (a reviewer's approve POST rendering the next
    request's pane while the requester's socket waited to show the tool's result), and one hop per socket
    per message (100 sockets on a run: 100 hops per commit)."""

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
