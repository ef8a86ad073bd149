"""The Costs dashboard follows spend live: its socket (finance and admins only) hears when the tenant's spend
changed, after the ledger write committed, collapsed to about one message a second; the page then fetches
its panels again, the same partial it renders."""

import pytest
from channels.db import database_sync_to_async

from agents.services import run_start
from costs.live import spend_changed
from tests.agents.test_live import communicator, login
from tests.factories import advance, make_looper
from tests.memory.test_live_badge import in_own_loop

pytestmark = pytest.mark.django_db(transaction=True)


def test_only_finance_and_admins_of_the_tenant_may_open_it(cast, client_for):
    in_own_loop(_refusals, cast, client_for)


def test_finance_hears_when_the_tenants_spend_changed_and_no_one_else_does(cast, client_for, settings):
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"
    in_own_loop(_hears, cast, client_for)


def test_many_changes_in_a_moment_collapse_into_one_or_two_messages(cast, client_for):
    in_own_loop(_collapses, cast, client_for)


def test_the_dashboard_listens_and_refetches_its_own_panels(cast, client_for):
    page = client_for(cast.finance).get("/t/acme/costs/").content.decode()
    assert 'data-live-costs="/ws/t/acme/costs/"' in page
    assert 'hx-trigger="spend-changed from:body, every 60s"' in page and "panels=1" in page


async def _refusals(cast, client_for):
    for user, path, code in ((cast.outsider, "/ws/t/acme/costs/", 4404), (cast.member, "/ws/t/acme/costs/", 4403),
                             (cast.reviewer, "/ws/t/acme/costs/", 4403), (cast.finance, "/ws/t/nope/costs/", 4404)):
        client = await database_sync_to_async(login)(client_for, user)
        connected, closed_with = await communicator(client, path).connect()
        assert (connected, closed_with) == (False, code), user.username
    for user in (cast.finance, cast.admin):
        socket = communicator(await database_sync_to_async(login)(client_for, user), "/ws/t/acme/costs/")
        assert (await socket.connect())[0]
        await socket.disconnect()


async def _hears(cast, client_for):
    finance = communicator(await database_sync_to_async(login)(client_for, cast.finance), "/ws/t/acme/costs/")
    globex = communicator(await database_sync_to_async(login)(client_for, cast.both), "/ws/t/globex/costs/")
    for socket in (finance, globex):
        assert (await socket.connect())[0]

    def spend():
        return advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                                 requested_by=cast.member))

    run = await database_sync_to_async(spend)()
    assert run.status == "completed"
    assert await finance.receive_json_from(timeout=5) == {"type": "spend.changed"}
    assert await globex.receive_nothing(timeout=0.5)  # another tenant's dashboard hears nothing
    for socket in (finance, globex):
        await socket.disconnect()


async def _collapses(cast, client_for):
    finance = communicator(await database_sync_to_async(login)(client_for, cast.finance), "/ws/t/acme/costs/")
    assert (await finance.connect())[0]
    for _ in range(50):
        spend_changed(cast.acme.pk)
    assert await finance.receive_json_from(timeout=5) == {"type": "spend.changed"}
    if not await finance.receive_nothing(timeout=2):  # the trailing message for the changes of that second
        await finance.receive_json_from(timeout=1)
    assert await finance.receive_nothing(timeout=1.5)
    await finance.disconnect()
