"""The queue's socket: a new request reaches reviewers live (count and list); outsiders 404, members 403."""

import pytest
from channels.db import database_sync_to_async

from agents.services import run_start
from tests.agents.test_live import communicator, login
from tests.factories import RENEWAL_GOAL, advance

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def run_until_approval_requested(cast, renewals):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    assert run.status == "waiting_for_human", "the run never asked for approval"


async def test_a_new_request_arrives_live_with_the_count(cast, renewals, client_for):
    client = await database_sync_to_async(login)(client_for, cast.reviewer)
    queue = communicator(client, "/ws/t/acme/approvals/?sort=risk")
    badge = communicator(client, "/ws/t/acme/approvals/?badge=1")
    assert (await queue.connect())[0] and (await badge.connect())[0]
    await database_sync_to_async(run_until_approval_requested)(cast, renewals)
    update = await queue.receive_json_from(timeout=10)
    assert update["count"] == 1 and "email.send" in update["list"] and "queue-item-" in update["list"]
    assert await badge.receive_json_from(timeout=10) == {"count": 1}
    await queue.disconnect()
    await badge.disconnect()


async def test_outsiders_are_refused_404_and_members_403(cast, client_for):
    outsider = communicator(await database_sync_to_async(login)(client_for, cast.outsider), "/ws/t/acme/approvals/")
    assert await outsider.connect() == (False, 4404)
    member = communicator(await database_sync_to_async(login)(client_for, cast.member), "/ws/t/acme/approvals/?badge=1")
    assert await member.connect() == (False, 4403)


async def test_a_burst_of_changes_costs_a_socket_a_few_renders_not_one_each(cast, renewals, client_for, monkeypatch):
    """A sweep escalating hundreds of requests announces each; a socket renders again only after its last
    render. The real render is slowed to what a queue of thousands costs, so the burst arrives during it."""
    import time

    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from approvals import consumers
    from approvals.live import queue_group, render_queue_update

    def render_of_a_long_queue(**kwargs):
        time.sleep(0.2)
        return render_queue_update(**kwargs)

    monkeypatch.setattr(consumers, "render_queue_update", render_of_a_long_queue)
    await database_sync_to_async(run_until_approval_requested)(cast, renewals)
    client = await database_sync_to_async(login)(client_for, cast.reviewer)
    queue = communicator(client, "/ws/t/acme/approvals/?sort=risk")
    assert (await queue.connect())[0]
    layer = get_channel_layer()
    tenant_id = await sync_to_async(lambda: cast.acme.pk)()
    for _ in range(50):
        await layer.group_send(queue_group(tenant_id), {"type": "queue.changed"})
    frames = [await queue.receive_json_from(timeout=10)]
    while not await queue.receive_nothing(timeout=1):
        frames.append(await queue.receive_json_from(timeout=1))
    assert 1 <= len(frames) <= 5, len(frames)
    assert all(frame["count"] == 1 and "email.send" in frame["list"] for frame in frames)
    await queue.disconnect()


async def test_a_reconnecting_queue_socket_gets_the_queue_at_once(cast, renewals, client_for):
    """A request that arrived while the socket was away is in the first frame after the reconnect."""
    await database_sync_to_async(run_until_approval_requested)(cast, renewals)
    client = await database_sync_to_async(login)(client_for, cast.reviewer)
    queue = communicator(client, "/ws/t/acme/approvals/?sort=risk&catch_up=1")
    badge = communicator(client, "/ws/t/acme/approvals/?badge=1&catch_up=1")
    assert (await queue.connect())[0] and (await badge.connect())[0]
    update = await queue.receive_json_from(timeout=10)
    assert update["count"] == 1 and "email.send" in update["list"]
    assert await badge.receive_json_from(timeout=10) == {"count": 1}
    first_visit = communicator(client, "/ws/t/acme/approvals/?badge=1")  # the page was rendered just now
    assert (await first_visit.connect())[0]
    assert await first_visit.receive_nothing(timeout=0.5)
    for socket in (queue, badge, first_visit):
        await socket.disconnect()


async def test_a_nul_character_in_the_filters_closes_the_socket_4400(cast, client_for):
    client = await database_sync_to_async(login)(client_for, cast.reviewer)
    assert await communicator(client, "/ws/t/acme/approvals/?tool=email%00send").connect() == (False, 4400)
    other = communicator(client, "/ws/t/acme/approvals/?min_risk=%C2%B2&tool=%FF&catch_up=1")  # ², not UTF-8
    assert (await other.connect())[0]
    assert (await other.receive_json_from(timeout=10))["count"] == 0
    await other.disconnect()
