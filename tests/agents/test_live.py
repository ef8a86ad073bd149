"""Websockets: outsiders are refused; a reconnecting socket gets exactly what it missed."""

import asyncio
import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agents.models import Agent, RunEvent
from agents.services import run_add_instruction, run_pause, run_start
from console.asgi import application
from console.devstack import EmbeddedRedis
from demo.seed import seed_demo_systems

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def communicator(user_client, path):
    session = user_client.cookies["sessionid"].value
    return WebsocketCommunicator(application, path, headers=[(b"cookie", f"sessionid={session}".encode()),
                                                            (b"origin", b"http://localhost")])


@pytest.fixture
def run(cast):
    seed_demo_systems(cast.acme)
    agent = Agent.objects.get(tenant=cast.acme, slug="renewals")
    return run_start(tenant=cast.acme, agent=agent, goal="Prepare the renewal plan for ACME-042", requested_by=cast.member)


def login(client_for, user):
    client = client_for(user)
    client.get("/")  # materialise the session cookie
    return client


async def test_an_outsider_cannot_open_a_run_socket(cast, run, client_for):
    client = await database_sync_to_async(login)(client_for, cast.outsider)
    socket = communicator(client, f"/ws/t/acme/runs/{run.number}/")
    connected, code = await socket.connect()
    assert not connected and code == 4404
    socket = communicator(client, f"/ws/t/globex/runs/{run.number}/")  # the right tenant for him, not his run
    connected, code = await socket.connect()
    assert not connected


async def test_a_reconnecting_socket_receives_exactly_the_missed_events_in_order(cast, run, client_for):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()._get_layer()  # this process's, on this loop
    group = layer._get_group_channel_name(f"run-{run.pk}")
    client = await database_sync_to_async(login)(client_for, cast.member)
    socket = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=0")
    connected, _ = await socket.connect()
    assert connected
    first = await socket.receive_json_from(timeout=5)
    assert [e["seq"] for e in first["events"]] == [1, 2]
    assert "run-card" in first["replace"] and "run.created" in first["append"]["run-timeline"]
    watching = set(layer.groups[group])
    await socket.disconnect()
    # The closed page left the process's layer (console.sockets cancels its layer read): nobody hears of the run.
    assert len(watching) == 1 and group not in layer.groups and not watching & set(layer.channels)

    # While disconnected, things happen.
    for text in ["one", "two", "three"]:
        await database_sync_to_async(run_add_instruction)(run=run, actor=cast.member, text=text)

    socket = communicator(client, f"/ws/t/acme/runs/{run.number}/?after={first['seq']}")
    connected, _ = await socket.connect()
    assert connected
    caught_up = await socket.receive_json_from(timeout=5)
    assert [e["seq"] for e in caught_up["events"]] == [3, 4, 5]
    assert [e["type"] for e in caught_up["events"]] == ["instruction.added"] * 3
    # And then it streams live.
    await database_sync_to_async(run_add_instruction)(run=run, actor=cast.member, text="four")
    live = await socket.receive_json_from(timeout=5)
    assert [e["seq"] for e in live["events"]] == [6]
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_the_live_card_offers_approval_buttons_only_to_reviewers(cast, run, client_for):
    from approvals.models import ApprovalRequest

    await database_sync_to_async(ApprovalRequest.objects.create)(
        tenant=cast.acme, run=run, step=1, call_id="c", tool="email.send", arguments={}, risk=3, policy="test")
    for user, sees_buttons in [(cast.member, False), (cast.reviewer, True)]:
        client = await database_sync_to_async(login)(client_for, user)
        socket = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=0")
        assert (await socket.connect())[0]
        card = (await socket.receive_json_from(timeout=5))["replace"]["run-card"]
        assert (">Approve<" in card) is sees_buttons
        await socket.disconnect()


async def test_an_outsider_cannot_open_the_runs_list_socket(cast, client_for):
    client = await database_sync_to_async(login)(client_for, cast.outsider)
    connected, code = await communicator(client, "/ws/t/acme/runs/").connect()
    assert not connected and code == 4404


async def test_the_runs_list_socket_gets_a_row_when_a_run_changes(cast, run, client_for):
    client = await database_sync_to_async(login)(client_for, cast.admin)
    socket = communicator(client, "/ws/t/acme/runs/")
    connected, _ = await socket.connect()
    assert connected
    await database_sync_to_async(run_add_instruction)(run=run, actor=cast.admin, text="hello")
    row = await socket.receive_json_from(timeout=5)
    assert row["replace_or_prepend"]["id"] == f"run-row-{run.number}"
    await socket.disconnect()


def test_an_update_never_runs_ahead_of_the_card_it_renders(cast):
    """A step that commits between reading the run and reading its events must not leave the page
    with a stale card and a seq that makes it ignore the next message."""
    from agents.live import render_run_update
    from agents.models import Run

    seed_demo_systems(cast.acme)
    run = run_start(tenant=cast.acme, agent=Agent.objects.get(tenant=cast.acme, slug="renewals"), goal="Renew ACME-042",
                    requested_by=cast.member)
    read_first = Run.objects.get(pk=run.pk)
    run_add_instruction(run=run, actor=cast.member, text="Mention the SSO discount")  # commits the next event
    update = render_run_update(read_first, 0, can_decide=False)
    assert update["seq"] == read_first.event_seq and [e["seq"] for e in update["events"]] == [1, 2]


async def test_every_viewer_of_a_run_gets_the_frame_rendered_once_for_their_role(cast, run, client_for, monkeypatch):
    """Ten people watching a run: a commit costs one render per role's view, not one per socket, and
    each sees what their role may (reviewers the decision buttons); a socket that connects late
    catches up from the same shared frames."""
    from agents import consumers
    from approvals.models import ApprovalRequest

    renders = []
    render = consumers.render_run_update

    def counting(run_, after, *, can_decide):
        renders.append((after, can_decide))
        return render(run_, after, can_decide=can_decide)

    monkeypatch.setattr(consumers, "render_run_update", counting)
    await database_sync_to_async(ApprovalRequest.objects.create)(
        tenant=cast.acme, run=run, step=1, call_id="c", tool="email.send", arguments={}, risk=3, policy="test")
    viewers = [(cast.member, False)] * 5 + [(cast.reviewer, True)] * 5
    sockets = []
    for user, can_decide in viewers:
        client = await database_sync_to_async(login)(client_for, user)
        socket = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=2")  # in step: each page was rendered at seq 2
        assert (await socket.connect())[0]
        sockets.append((socket, can_decide))
    renders.clear()

    await database_sync_to_async(run_pause)(run=run, actor=cast.member)  # the card shows it: rendered per role
    for socket, can_decide in sockets:
        update = await socket.receive_json_from(timeout=5)
        assert [e["seq"] for e in update["events"]] == [3]
        assert (">Approve<" in update["replace"]["run-card"]) is can_decide
        assert "status-paused" in update["replace"]["run-card"]
    assert sorted(renders) == [(2, False), (2, True)], renders

    client = await database_sync_to_async(login)(client_for, cast.member)
    late = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=2")
    assert (await late.connect())[0]
    caught_up = await late.receive_json_from(timeout=5)
    assert [e["seq"] for e in caught_up["events"]] == [3]
    assert sorted(renders) == [(2, False), (2, True)], "the late socket reused the shared frame"
    for socket, _ in [*sockets, (late, None)]:
        await socket.disconnect()


async def test_sockets_idle_for_30_seconds_still_receive_the_next_update(cast, run, client_for):
    """The channel layer waits for messages with a blocking Redis read that returns every few seconds;
    a client read timeout shorter than that wait closed every socket after ~5 s of quiet."""
    import asyncio

    from approvals.models import ApprovalRequest
    from approvals.live import publish_queue_changed_on_commit

    member = await database_sync_to_async(login)(client_for, cast.member)
    reviewer = await database_sync_to_async(login)(client_for, cast.reviewer)
    page = communicator(member, f"/ws/t/acme/runs/{run.number}/?after=2")
    runs = communicator(member, "/ws/t/acme/runs/")
    badge = communicator(reviewer, "/ws/t/acme/approvals/?badge=1")
    for socket in (page, runs, badge):
        assert (await socket.connect())[0]
    await asyncio.sleep(30)

    await database_sync_to_async(run_add_instruction)(run=run, actor=cast.member, text="still there?")
    assert [e["type"] for e in (await page.receive_json_from(timeout=5))["events"]] == ["instruction.added"]
    assert (await runs.receive_json_from(timeout=5))["replace_or_prepend"]["id"] == f"run-row-{run.number}"

    def request_approval():
        ApprovalRequest.objects.create(tenant=cast.acme, run=run, step=1, call_id="c", tool="email.send",
                                       arguments={}, risk=3, policy="test")
        publish_queue_changed_on_commit(cast.acme.pk)

    await database_sync_to_async(request_approval)()
    assert await badge.receive_json_from(timeout=5) == {"count": 1}
    for socket in (page, runs, badge):
        await socket.disconnect()


async def test_a_commit_that_only_adds_to_the_timeline_sends_its_rows_alone_and_the_card_follows_the_next_change(
        cast, run, client_for):
    """An instruction changes nothing the card, plan or controls show: every viewer, whatever their role,
    gets the same new timeline row and the rest of the page stays as it is; the next change the card
    shows (a pause: the run is queued, so it pauses at once) brings the card and controls again, with
    each role's view."""
    from approvals.models import ApprovalRequest

    await database_sync_to_async(ApprovalRequest.objects.create)(
        tenant=cast.acme, run=run, step=1, call_id="c", tool="email.send", arguments={}, risk=3, policy="test")
    sockets = []
    for user, can_decide in [(cast.member, False), (cast.reviewer, True)] * 2:
        client = await database_sync_to_async(login)(client_for, user)
        socket = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=0")
        assert (await socket.connect())[0]
        assert [e["seq"] for e in (await socket.receive_json_from(timeout=5))["events"]] == [1, 2]
        sockets.append((socket, can_decide))

    await database_sync_to_async(run_add_instruction)(run=run, actor=cast.member, text="Mention the SSO discount")
    frames = [await socket.receive_json_from(timeout=5) for socket, _ in sockets]
    for frame in frames:
        assert [e["seq"] for e in frame["events"]] == [3] and frame["replace"] == {}
        assert "Mention the SSO discount" in frame["append"]["run-timeline"]
    assert len({frame["append"]["run-timeline"] for frame in frames}) == 1

    await database_sync_to_async(run_pause)(run=run, actor=cast.reviewer)
    for socket, can_decide in sockets:
        frame = await socket.receive_json_from(timeout=5)
        assert [e["seq"] for e in frame["events"]] == [4]
        assert "status-paused" in frame["replace"]["run-card"]
        assert (">Approve<" in frame["replace"]["run-card"]) is can_decide
        assert ">Resume<" in frame["replace"]["run-controls"]
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()


def test_what_a_commit_changed_decides_whether_the_card_is_rendered_again():
    from agents.live import page_changed

    assert not page_changed(columns=frozenset({"inbox", "event_seq", "updated_at"}),
                            event_types=frozenset({"instruction.added"}))
    assert page_changed(columns=frozenset({"inbox", "pause_requested"}),
                        event_types=frozenset({"control.pause_requested"}))
    assert page_changed(columns=frozenset({"step", "input_tokens"}), event_types=frozenset({"model.call"}))
    # An approval request or a plan step changes no run column but shows on the card and the plan.
    assert page_changed(columns=frozenset(), event_types=frozenset({"approval.decided"}))
    assert page_changed(columns=frozenset(), event_types=frozenset({"instruction.added", "plan.edited"}))
    assert page_changed(columns=frozenset({"a_column_added_later"}), event_types=frozenset({"instruction.added"}))


def test_timeline_rows_from_the_events_a_message_carried_are_the_rows_a_read_gives(cast):
    """A commit's events travel in its message (no read per commit); the rows rendered from them are
    the very rows rendered from the database."""
    from agents.live import events_from_json, render_run_events
    from agents.run_store import events_json

    seed_demo_systems(cast.acme)
    run = run_start(tenant=cast.acme, agent=Agent.objects.get(tenant=cast.acme, slug="renewals"), goal="Renew ACME-042",
                    requested_by=cast.member)
    run_add_instruction(run=run, actor=cast.member, text="Mention the <SSO> discount & the 10 % rebate")
    read = render_run_events(run_id=run.pk, after_seq=0, upto=3)
    carried = render_run_events(run_id=run.pk, after_seq=0, upto=3, events=events_from_json(
        run.pk, [events_json(list(RunEvent.objects.filter(run=run, seq__lte=3).order_by("seq")))]))
    assert [e["seq"] for e in read["events"]] == [1, 2, 3] and read["replace"] == {}
    assert carried == read


def test_a_socket_that_goes_away_mid_render_leaves_the_sockets_sharing_its_frame_a_frame():
    """The first socket to need a frame renders it for all; when it disconnects mid-render (its task cancelled),
    the sockets that were waiting for that frame render it themselves instead of losing the update."""
    import asyncio

    from agents.live import SharedFrames

    async def scenario():
        frames, started = SharedFrames(), asyncio.Event()

        async def slow_render():
            started.set()
            await asyncio.sleep(10)
            return {"seq": 5, "html": "first"}

        async def quick_render():
            return {"seq": 5, "html": "second"}

        first = asyncio.create_task(frames.frame(("run", 4, "member"), heard=5, render=slow_render))
        await started.wait()
        second = asyncio.create_task(frames.frame(("run", 4, "member"), heard=5, render=quick_render))
        await asyncio.sleep(0)
        first.cancel()  # the first socket disconnected
        with pytest.raises(asyncio.CancelledError):
            await first
        return await asyncio.wait_for(second, 2)

    assert asyncio.run(scenario()) == {"seq": 5, "html": "second"}


def test_the_sockets_waiting_for_a_frame_whose_renderer_went_away_share_one_render_of_it():
    """When the socket rendering a frame disconnects, the sockets that were waiting for it get it from one
    render again, not one render each."""
    import asyncio

    from agents.live import SharedFrames

    async def scenario():
        frames, started, renders = SharedFrames(), asyncio.Event(), []

        async def render():
            renders.append(len(renders))
            started.set()
            await asyncio.sleep(10 if len(renders) == 1 else 0)  # only the first render is cut short
            return {"seq": 5}

        first = asyncio.create_task(frames.frame(("run", 4, "member"), heard=5, render=render))
        await started.wait()
        waiting = [asyncio.create_task(frames.frame(("run", 4, "member"), heard=5, render=render)) for _ in range(3)]
        await asyncio.sleep(0)
        first.cancel()  # the first socket disconnected
        with pytest.raises(asyncio.CancelledError):
            await first
        return await asyncio.wait_for(asyncio.gather(*waiting), 2), renders

    frames, renders = asyncio.run(scenario())
    assert frames == [{"seq": 5}] * 3 and len(renders) == 2


def test_a_socket_that_goes_away_while_its_shared_frame_is_finished_stops_there():
    """A waiting socket disconnected in the very moment the frame it waits for is done is not taken for one
    left without its frame: it renders nothing and its cancellation goes on."""
    import asyncio

    from agents.live import SharedFrames

    async def scenario():
        frames, done, renders = SharedFrames(), asyncio.Event(), []

        async def render():
            renders.append(len(renders))
            await done.wait()
            return {"seq": 5}

        first = asyncio.create_task(frames.frame(("run", 4, "member"), heard=5, render=render))
        await asyncio.sleep(0)
        second = asyncio.create_task(frames.frame(("run", 4, "member"), heard=5, render=render))
        await asyncio.sleep(0)
        done.set()  # the frame is finished on the loop's next turn...
        second.cancel()  # ...the very turn the second socket's disconnection reaches it
        assert await first == {"seq": 5}
        with pytest.raises(asyncio.CancelledError):
            await second
        return renders

    assert asyncio.run(scenario()) == [0]



def test_commits_heard_while_a_run_s_message_is_sent_go_out_as_one_that_keeps_the_card_and_the_rows_in_order(
        monkeypatch):
    """Commits that come while the run's message is on its way coalesce: a card change among them is never
    lost (the sockets render the card), timeline-only ones carry their rows in order, and rows that have
    grown past ROWS_MAX together are left to the sockets to read instead of travelling."""
    import asyncio
    import json
    import time

    from django.utils import timezone

    from agents import live
    from console import aio

    sent, tokens, run_id = [], [], 10**9

    class Layer:
        async def group_send(self, group, message):
            if group == live.run_group(run_id):
                sent.append(message)
                while not tokens:  # each message waits to be let through: the commits meanwhile coalesce
                    await asyncio.sleep(0.001)
                tokens.pop()

    monkeypatch.setattr(live, "get_channel_layer", Layer)

    def commit(seq, *, card=False, text="Mention the SSO discount"):
        columns, types = (({"pause_requested"}, {"control.pause_requested"}) if card else
                          ({"inbox", "event_seq"}, {"instruction.added"}))
        events = [RunEvent(run_id=run_id, seq=seq, type=next(iter(types)), payload={"text": text}, at=timezone.now())]
        live.publish_run(run_id, seq=seq, tenant_id=1, first=seq, columns=frozenset(columns),
                         event_types=frozenset(types), events=events)

    def until(done):
        deadline = time.monotonic() + 5
        while not done() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert done()

    def let_through(count):  # after the commits queued before it (the loop runs its callbacks in order)
        aio.background_loop().call_soon_threadsafe(tokens.append, 1)
        until(lambda: len(sent) == count)

    commit(1, card=True)
    until(lambda: len(sent) == 1)
    commit(2), commit(3, card=True), commit(4)
    let_through(2)
    commit(5), commit(6)
    let_through(3)
    for seq in range(7, 10):
        commit(seq, text="x" * 2000)
    let_through(4)
    aio.background_loop().call_soon_threadsafe(tokens.append, 1)
    until(lambda: run_id not in live._sending)
    commit(10)  # nothing waiting: sent as it is
    let_through(5)
    aio.background_loop().call_soon_threadsafe(tokens.append, 1)

    summary = [{"seq": m["seq"], "first": m["first"], "card": m["card"],
                "rows": [e["seq"] for part in m.get("rows", []) for e in json.loads(part)]} for m in sent]
    assert summary == [
        {"seq": 1, "first": 1, "card": True, "rows": []},
        {"seq": 4, "first": 2, "card": True, "rows": []},
        {"seq": 6, "first": 5, "card": False, "rows": [5, 6]},
        {"seq": 9, "first": 7, "card": False, "rows": []},  # about 6,000 characters of rows: read, not carried
        {"seq": 10, "first": 10, "card": False, "rows": [10]},
    ], summary


async def test_a_timeline_only_commit_after_a_lost_message_brings_the_whole_page(cast, run, client_for, monkeypatch):
    """The message of a change the card shows is lost (channels delivers at most once); the next commit only adds
    to the timeline, but the socket has not seen what came before it: it gets the card and every row it missed."""
    from agents import live

    publish_run = live.publish_run

    def losing_the_pause(run_id, **commit):
        if "control.pause_requested" not in commit["event_types"] and "status" not in commit["event_types"]:
            publish_run(run_id, **commit)

    client = await database_sync_to_async(login)(client_for, cast.member)
    socket = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=0")
    assert (await socket.connect())[0]
    assert [e["seq"] for e in (await socket.receive_json_from(timeout=5))["events"]] == [1, 2]
    monkeypatch.setattr(live, "publish_run", losing_the_pause)
    await database_sync_to_async(run_pause)(run=run, actor=cast.member)
    await database_sync_to_async(run_add_instruction)(run=run, actor=cast.member, text="Mention the SSO discount")

    frame = await socket.receive_json_from(timeout=5)
    assert [e["seq"] for e in frame["events"]] == [3, 4]
    assert "status-paused" in frame["replace"]["run-card"] and ">Resume<" in frame["replace"]["run-controls"]
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


@pytest.fixture
def layer_redis(tmp_path, settings):
    """A Redis of the test's own as the Channels layer, to take away and bring back."""
    redis = EmbeddedRedis(tmp_path / "redis", persist=False)
    redis.start()
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {
        **layer["CONFIG"], "hosts": [{**layer["CONFIG"]["hosts"][0], "address": redis.url()}]}}}
    yield redis
    redis.stop()


async def test_pages_open_while_redis_restarted_show_what_happened_meanwhile(cast, run, client_for, layer_redis, caplog):
    """Pub/sub keeps nothing for a subscriber that was away: the layer tells the sockets, and they read again."""
    client = await database_sync_to_async(login)(client_for, cast.member)
    page = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=0")
    assert (await page.connect())[0]
    assert [e["seq"] for e in (await page.receive_json_from(timeout=5))["events"]] == [1, 2]
    runs_list = communicator(client, "/ws/t/acme/runs/")
    assert (await runs_list.connect())[0]

    layer_redis.stop()
    with caplog.at_level(logging.WARNING, logger="agents.live"):
        await database_sync_to_async(run_add_instruction)(run=run, actor=cast.member, text="said while Redis was away")
        for _ in range(100):  # its announcement is lost
            if any("could not publish run" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the commit's announcement was not attempted while Redis was away")
    layer_redis.start()

    caught_up = await page.receive_json_from(timeout=10)
    assert [e["seq"] for e in caught_up["events"]] == [3]
    assert "said while Redis was away" in caught_up["append"]["run-timeline"]
    listed = await runs_list.receive_json_from(timeout=10)
    assert f'id="run-row-{run.number}"' in listed["replace"]["run-rows"]
    # And the page streams live again.
    await database_sync_to_async(run_add_instruction)(run=run, actor=cast.member, text="and after")
    assert [e["seq"] for e in (await page.receive_json_from(timeout=5))["events"]] == [4]
    await page.disconnect()
    await runs_list.disconnect()


async def test_a_run_page_streams_while_a_slow_request_holds_the_web_process_s_view_thread(cast, run, client_for):
    """A reviewer's approve POST renders the next request's pane on the one thread synchronous views share;
    the requester's run page shows the commit meanwhile, not after it."""
    client = await database_sync_to_async(login)(client_for, cast.member)
    page = communicator(client, f"/ws/t/acme/runs/{run.number}/?after=0")
    assert (await page.connect())[0]
    assert [e["seq"] for e in (await page.receive_json_from(timeout=5))["events"]] == [1, 2]

    view_done = threading.Event()
    slow_view = asyncio.ensure_future(sync_to_async(view_done.wait)(30))  # the views' thread, busy
    try:
        await database_sync_to_async(run_add_instruction, thread_sensitive=False)(run=run, actor=cast.member,
                                                                                   text="while a view runs")
        shown = await page.receive_json_from(timeout=10)
        assert not slow_view.done()
        assert [e["seq"] for e in shown["events"]] == [3]
    finally:
        view_done.set()
        await slow_view
    await page.disconnect()


def test_every_websocket_consumer_handles_its_messages_on_the_event_loop():
    from console.routing import websocket_urlpatterns
    from console.sockets import LiveConsumer

    consumers = {pattern.callback.consumer_class for pattern in websocket_urlpatterns}
    assert consumers and all(issubclass(consumer, LiveConsumer) for consumer in consumers)
    # and each reads again when the layer says announcements were lost (console/channel_layer.py)
    assert all(callable(getattr(consumer, "layer_gap", None)) for consumer in consumers)


def checked_out() -> int:
    from django.db import connections

    stats = connections["default"].pool.get_stats()
    return stats.get("pool_size", 0) - stats.get("pool_available", 0)


async def test_open_run_pages_hold_no_database_connection_between_their_frames(cast, run, client_for):
    """Each open page's frame is rendered on the thread pool; its connection goes back to the pool when the frame
    is done, not when the page closes. Before, a page whose frame had been rendered held one until it closed,
    and a web process with as many such pages as its pool has connections left none for requests."""
    client = await database_sync_to_async(login)(client_for, cast.member)
    await sync_to_async(checked_out)()  # the pool made
    before = await database_sync_to_async(checked_out)()
    sockets = []
    for after in (0, 1, 0):  # a catch-up for each (the run has two events)
        socket = communicator(client, f"/ws/t/acme/runs/{run.number}/?after={after}")
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)
        sockets.append(socket)
    assert await database_sync_to_async(checked_out)() <= before
    for socket in sockets:
        await socket.disconnect()
