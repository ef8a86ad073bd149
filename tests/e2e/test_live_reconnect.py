"""A page whose socket dropped catches up when it reconnects: what changed meanwhile shows without a reload."""

import re

from playwright.sync_api import expect

from demo.seed import seed_demo_systems
from agents.models import Agent
from agents.services import run_start
from tests.e2e.test_shell import log_in
from tests.factories import RENEWAL_GOAL, advance


class Link:
    """The page's sockets through Playwright: passed to the server while up; while down, a reconnecting
    page gets a socket that is open but hears nothing (as one whose messages were lost)."""

    def __init__(self, page):
        self.up, self.sockets = True, []
        page.route_web_socket(re.compile(r"/ws/t/acme/(runs|approvals)/"), self._open)

    def _open(self, socket):
        self.sockets.append(socket)
        if self.up:
            socket.connect_to_server()

    def drop(self, page, *, up: bool) -> None:
        """Close every socket the page has; it reconnects (after half a second) to a link that is ``up`` or not."""
        old, self.sockets, self.up = self.sockets, [], up
        for socket in old:
            socket.close(code=1001)
        while len(self.sockets) < len(old):
            page.wait_for_timeout(50)


def test_the_runs_list_and_the_badge_show_what_changed_while_their_sockets_were_away(cast, console_server, page):
    seed_demo_systems(cast.acme)
    link = Link(page)
    log_in(page, console_server, "rita")  # the runs list, with the approvals badge in the navigation
    while len(link.sockets) < 2:
        page.wait_for_timeout(50)
    reloads = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == page.main_frame else None)
    rows, badge = page.locator("#run-rows"), page.locator("#approvals-badge [data-count]")
    expect(rows).to_contain_text("No runs yet")

    link.drop(page, up=False)
    run = advance(run_start(tenant=cast.acme, agent=Agent.objects.get(tenant=cast.acme, slug="renewals"),
                            goal=RENEWAL_GOAL, requested_by=cast.member))
    assert run.status == "waiting_for_human"
    page.wait_for_timeout(1000)
    expect(rows).to_contain_text("No runs yet")  # the update was missed
    expect(badge).to_be_hidden()

    link.drop(page, up=True)
    expect(page.locator(f"#run-row-{run.number}")).to_contain_text("Waiting For Human")
    expect(rows).not_to_contain_text("No runs yet")
    expect(badge).to_have_text("1")
    assert reloads == []
