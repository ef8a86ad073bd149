"""Every main page in a real browser: no serious or critical axe-core violations, and long unbroken text
wraps instead of widening the page."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from agents.services import run_start
from demo.seed import seed_demo_systems
from tests.e2e.test_shell import log_in
from tests.factories import RENEWAL_GOAL, advance

SERIOUS = {"serious", "critical"}


@pytest.fixture
def waiting_run(cast):
    seed_demo_systems(cast.acme)
    return advance(run_start(tenant=cast.acme, agent=cast.acme.agents.get(slug="renewals"), goal=RENEWAL_GOAL,
                             requested_by=cast.member))


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results.response["violations"] if v["impact"] in SERIOUS]


def test_the_main_pages_have_no_serious_accessibility_violations(cast, console_server, page, waiting_run):
    log_in(page, console_server, "ada")
    pages = ["/t/acme/runs/", f"/t/acme/runs/{waiting_run.number}/", "/t/acme/approvals/", "/t/acme/admin/policies/",
             "/t/acme/admin/", "/t/acme/admin/tokens/", "/t/acme/admin/audit/", "/t/acme/costs/", "/t/acme/costs/runs/",
             f"/t/acme/costs/runs/{waiting_run.number}/", "/t/acme/costs/budgets/", "/t/acme/memory/", "/t/acme/admin/memory/"]
    from memory.services import memory_create

    record = memory_create(tenant=cast.acme, actor=cast.admin, scope="user", user=cast.admin, type="fact",
                           content="Ada reviews quotes on Mondays.")
    pages.append(f"/t/acme/memory/?id={record.pk}")
    found = {}
    for path in pages:
        page.goto(console_server + path)
        page.wait_for_load_state("load")
        if problems := serious_violations(page):
            found[path] = problems
    assert not found, found


def test_a_long_unbroken_goal_wraps_instead_of_widening_the_page(cast, console_server, page):
    seed_demo_systems(cast.acme)
    run = run_start(tenant=cast.acme, agent=cast.acme.agents.get(slug="renewals"), goal="x" * 2000,
                    requested_by=cast.member)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, console_server, "max")
    for path in ("/t/acme/runs/", f"/t/acme/runs/{run.number}/"):
        page.goto(console_server + path)
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280, path
