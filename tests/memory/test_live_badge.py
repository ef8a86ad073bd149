"""The "To confirm" badge's socket: outsiders refused; each person's count is theirs only, and it follows
changes live (a proposal waiting, then confirmed)."""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async

from memory import services
from tests.agents.test_live import communicator, login

# On a loop of their own in a thread of their own, not anyio's: in the whole suite these transactional tests come
# after the browser tests, whose plugin leaves anyio's runner closed and an event loop on the main thread.
pytestmark = pytest.mark.django_db(transaction=True)


def in_own_loop(coroutine_function, *args):
    outcome = {}

    def run():
        try:
            asyncio.run(coroutine_function(*args))
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the socket test hung"
    if "error" in outcome:
        raise outcome["error"]


def test_outsiders_and_strangers_cannot_open_it(cast, client_for):
    in_own_loop(_outsiders, cast, client_for)


def test_each_person_counts_only_what_they_may_confirm_live(cast, client_for):
    in_own_loop(_counts, cast, client_for)


async def _outsiders(cast, client_for):
    gus = await database_sync_to_async(login)(client_for, cast.outsider)
    connected, code = await communicator(gus, "/ws/t/acme/memory/").connect()
    assert (connected, code) == (False, 4404)
    connected, code = await communicator(gus, "/ws/t/nope/memory/").connect()
    assert (connected, code) == (False, 4404)


async def _counts(cast, client_for):
    max_socket = communicator(await database_sync_to_async(login)(client_for, cast.member), "/ws/t/acme/memory/")
    rita_socket = communicator(await database_sync_to_async(login)(client_for, cast.reviewer), "/ws/t/acme/memory/")
    gus_socket = communicator(await database_sync_to_async(login)(client_for, cast.outsider), "/ws/t/globex/memory/")
    for socket in (max_socket, rita_socket, gus_socket):
        assert (await socket.connect())[0]
        assert await socket.receive_json_from(timeout=5) == {"count": 0}

    record = await database_sync_to_async(services.memory_create)(
        tenant=cast.acme, actor=None, scope="user", user=cast.member, type="preference",
        content="Max likes calls on Fridays.", status="proposed")
    assert await max_socket.receive_json_from(timeout=5) == {"count": 1}
    assert await rita_socket.receive_json_from(timeout=5) == {"count": 0}  # not hers to see
    assert await gus_socket.receive_nothing(timeout=0.5)  # another tenant hears nothing

    await database_sync_to_async(services.memory_confirm)(record, actor=cast.member)
    assert await max_socket.receive_json_from(timeout=5) == {"count": 0}
    for socket in (max_socket, rita_socket, gus_socket):
        await socket.disconnect()
