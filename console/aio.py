"""Event loops for sync code: the process's background loop, and each thread's own loop.

The background loop runs on its own daemon thread for the life of the process. Sync code (worker
threads, Django views) hands coroutines to it instead of starting a loop per call: clients bound to
a loop (the channel layer's Redis pool, an MCP session) then stay connected from call to call,
concurrent callers share the loop, and it works whatever the calling thread runs (a caller's own
running loop would refuse a nested one). A forked child gets a loop of its own.

A call that waits for its answer anyway (a model request) runs on the calling thread's own loop
instead (``run_here``): no hand-over to the background thread and back, which on a busy machine is
two thread wake-ups each way and the wait for the other thread to get the interpreter. What is bound
to that loop (a provider's HTTP client) is kept with it (``bound_here``), for the thread's life.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0


def background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():
            _loop, _pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, daemon=True, name="proctor-background-loop").start()
        return _loop


def run(coroutine: Coroutine):
    """Run on the background loop and wait for the result (exceptions are raised here)."""
    return asyncio.run_coroutine_threadsafe(coroutine, background_loop()).result()


class _ThreadLoop(threading.local):
    """The calling thread's own loop and what is bound to it, made again in a forked child."""

    def __init__(self) -> None:
        self.pid, self.loop, self.bound = 0, None, {}


_here = _ThreadLoop()
_background_bound: dict = {}


def _loop_here() -> tuple[asyncio.AbstractEventLoop, dict]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # this thread runs a loop already (async code): it cannot wait on one of its own
        return background_loop(), _background_bound
    if _here.pid != os.getpid():
        _here.pid, _here.loop, _here.bound = os.getpid(), asyncio.new_event_loop(), {}
    return _here.loop, _here.bound


def run_here(coroutine: Coroutine):
    """Run on the calling thread's own loop and return the result (exceptions are raised here); from a
    thread that runs a loop already, on the background loop."""
    loop, _ = _loop_here()
    if loop is _loop:
        return run(coroutine)
    return loop.run_until_complete(coroutine)


def bound_here() -> dict:
    """Where to keep what is bound to the loop a ``run_here`` call from this thread runs on (a client
    made for it): gone with the thread."""
    return _loop_here()[1]


def submit(coroutine: Coroutine, what: str) -> Future:
    """Run on the background loop without waiting; a failure is logged as ``could not <what>``."""
    future = asyncio.run_coroutine_threadsafe(coroutine, background_loop())
    future.add_done_callback(lambda done: done.exception() and logger.warning(
        "could not %s", what, exc_info=done.exception()))
    return future


def socket_render(function):
    """For websocket consumers: run ``function`` (database reads and partial rendering) on the thread
    pool instead of the one thread that synchronous views share under ASGI, so a socket's frame is
    not held up behind a slow request in the same process (such as the decision whose change it shows).

    Its database connection goes back to the pool when it returns. Channels closes stale connections around
    the call, but outside the context asgiref runs the function in; Django's connections belong to that
    context, so the one the function opened was carried back into the socket's own context and held there
    for as long as the socket stayed open."""
    from channels.db import DatabaseSyncToAsync
    from django.db import close_old_connections

    @functools.wraps(function)
    def handing_back(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return DatabaseSyncToAsync(handing_back, thread_sensitive=False)
