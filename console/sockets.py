"""The base of the console's websocket consumers."""

from __future__ import annotations

import asyncio
import contextlib
import functools

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """A JSON websocket consumer whose messages are handled on the event loop as they come.

    Channels (4.2 and later) first hands every message, for every socket, to the one thread that
    synchronous views share under ASGI, to close that thread's stale database connections, in case the
    handler uses the async ORM there. Ours never do: their reads go through ``database_sync_to_async`` or
    ``console.aio.socket_render``, which close stale connections of the thread they run on. The hand-off was
    only a wait: behind whatever view that thread was running (a reviewer's approve POST rendering the next
    request's pane while the requester's socket waited to show the tool's result), and one hop per socket
    per message (100 sockets on a run: 100 hops per commit).

    Between messages, too, a socket waits as little as it can (``_dispatch_in_turn``): Channels' own loop
    makes a task for every message it reads and waits for it beside the browser's with ``asyncio.wait``, a
    task, a wait and an extra turn of the event loop per message and socket, before a frame already rendered
    for the others leaves (P4)."""

    async def __call__(self, scope, receive, send):
        layer = get_channel_layer(self.channel_layer_alias)
        if layer is None:  # no layer configured: Channels' own loop
            return await super().__call__(scope, receive, send)
        # What AsyncConsumer.__call__ sets up (channels 4.3), then our loop instead of await_many_dispatch.
        self.scope, self.channel_layer, self.base_send = scope, layer, send
        self.channel_name = await layer.new_channel()
        self.channel_receive = functools.partial(layer.receive, self.channel_name)
        with contextlib.suppress(StopConsumer):  # the browser went away: a clean exit
            await _dispatch_in_turn([receive, self.channel_receive], self.dispatch)

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


async def _dispatch_in_turn(sources, dispatch) -> None:
    """Read each source (the browser, the channel layer) in a task of its own that dispatches each message it
    reads itself, one message at a time across both (an uncontended lock costs nothing), in the order each
    source gave them: a message wakes its reader, which handles it at once. Returns or raises when a handler
    does (StopConsumer when the browser left); the other reader is then cancelled (the layer unsubscribes a
    channel whose read is cancelled)."""
    turn = asyncio.Lock()

    async def read(source):
        while True:
            message = await source()
            async with turn:
                await dispatch(message)

    readers = [asyncio.ensure_future(read(source)) for source in sources]
    try:
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        for reader in done:
            reader.result()
    finally:
        running = [reader for reader in readers if not reader.done()]
        for reader in running:
            reader.cancel()
        for reader in running:
            with contextlib.suppress(asyncio.CancelledError, StopConsumer):
                await reader
