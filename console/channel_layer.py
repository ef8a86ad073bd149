"""The Channels layer: channels_redis's pub/sub layer, and word to the sockets when it may have lost messages.

A group send is one PUBLISH; each web process subscribes once to a group its sockets joined and hands the
message to each of them itself. The core layer (channels_redis.core) instead pushes a copy into a Redis list
for every socket of the group and each process pulls them one by one: at 100 sockets on a run, a commit
cost 100 list pushes and their pulls before the first frame left (see bench/RESULTS.md, P4).

Pub/sub keeps nothing for a subscriber that was away. Every live message here only says "this changed" and
the database is the truth, so a lost one is repaired by reading again. What the library does not do is say
that messages were lost: while Redis is away its subscription is gone, and when it comes back the process
subscribes again without a word. This layer then sends every socket of the process a ``layer.gap``
message, and each consumer's ``layer_gap`` does what it does when its browser reconnects (read again
from the database).

A message is decoded once per process, not once for each of its sockets (the library queues the bytes to
every socket, and each decodes them): 100 sockets on a run, one decode per commit.
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

logger = logging.getLogger(__name__)

LAYER_GAP = {"type": "layer.gap"}


class _Decoded(dict):
    """A message as read from Redis, queued to each of the process's sockets it goes to (each gets a copy)."""


class _GapTellingShard(RedisSingleShardConnection):
    async def _do_receiving(self):
        # The library's receive loop, as it is in channels_redis 4.3, plus the gap: a read that fails
        # means the connection (and with it every subscription) went; the next read that returns comes
        # after redis-py connected again and subscribed to the same channels.
        lost = False
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if lost:
                        lost = False
                        logger.warning("Channels layer: subscribed again to %s; its sockets read what they missed",
                                       self.host.get("address"))
                        self._tell_gap()
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, asyncio.TimeoutError, GeneratorExit):
                raise
            except BaseException:
                if not lost:
                    logger.warning("Channels layer: lost its subscriptions to %s; trying again every second",
                                   self.host.get("address"), exc_info=True)
                lost = True
                await asyncio.sleep(1)

    def _receive_message(self, message):
        """The library's delivery to the channel or the group's channels in this process, decoding the message
        once for all of them."""
        if message is None:
            return
        name = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
        layer = self.channel_layer
        queues = [layer.channels[name]] if name in layer.channels else \
            [layer.channels[channel] for channel in layer.groups.get(name, ()) if channel in layer.channels]
        if queues:
            decoded = _Decoded(layer.channel_layer.deserialize(message["data"]))
            for queue in queues:
                queue.put_nowait(decoded)

    def _tell_gap(self) -> None:
        """Every socket of this process, whichever groups it is in (over-telling costs one read)."""
        for queue in list(self.channel_layer.channels.values()):
            queue.put_nowait(_Decoded(LAYER_GAP))


class _GapTellingLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [_GapTellingShard(shard.host, self) for shard in self._shards]


class PubSubChannelLayer(RedisPubSubChannelLayer):
    """``channels_redis.pubsub.RedisPubSubChannelLayer`` whose sockets hear of a lost subscription, and whose
    messages are decoded once per process."""

    def deserialize(self, message):
        if isinstance(message, _Decoded):  # decoded on arrival (_receive_message): this socket's copy
            return dict(message)
        return super().deserialize(message)

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        if loop not in self._layers:
            self._layers[loop] = _GapTellingLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return self._layers[loop]

