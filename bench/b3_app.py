"""B3's server: a bare ASGI websocket broadcast, no Django, no Channels layer, no Redis.

Served by uvicorn as ``bench.b3_app:app``. Any websocket is accepted and kept in a set.
``POST /broadcast?bytes=N`` makes one frame (JSON shaped like a run socket's: ``seq``,
``events`` and a padding string so the frame is about N bytes) and sends it to every open
socket, one after the other, then answers 204. That is the least a server can do to fan one
change out to N sockets: the floor the run sockets (P4) are compared with.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

_sockets: set = set()
_seq = 0


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await _socket(receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)


async def _socket(receive, send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    _sockets.add(send)
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        _sockets.discard(send)


async def _http(scope, receive, send) -> None:
    global _seq
    more = True
    while more:  # drain the request body
        message = await receive()
        more = message.get("more_body", False)
    status = 404
    if scope["method"] == "POST" and scope["path"] == "/broadcast":
        size = int(parse_qs(scope["query_string"].decode()).get("bytes", ["0"])[0])
        _seq += 1
        frame = json.dumps({"seq": _seq, "events": [{"seq": _seq, "type": "bench"}]})
        frame = frame[:-1] + ', "pad": "' + "x" * max(0, size - len(frame) - 10) + '"}'
        for socket in list(_sockets):
            try:
                await socket({"type": "websocket.send", "text": frame})
            except Exception:  # noqa: BLE001 - a socket that went away
                _sockets.discard(socket)
        status = 204
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
