"""Finance in a real Chromium: opens Costs from the keyboard, changes range and grouping, drills down
to a run's priced calls, exports CSV equal to the page; a budget stop shows on the run page."""

import csv
import re
from decimal import Decimal

from playwright.sync_api import expect

from agents.services import run_start
from costs.models import Budget
from costs.services import budget_save
from tests.e2e.test_shell import log_in
from tests.factories import advance, make_looper


def test_finance_reads_costs_drills_down_exports_and_sees_a_budget_stop(cast, console_server, page, settings):
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"
    agent = make_looper(cast.acme)
    for times, who in ((2, cast.member), (3, cast.admin)):
        advance(run_start(tenant=cast.acme, agent=agent, goal=f"Call noop {times} times", requested_by=who))
    budget_save(tenant=cast.acme, actor=cast.finance,
                budget=Budget(name="Per run", scope="run", limit_usd=Decimal("0.00003"), thresholds=[100]))
    stopped = advance(run_start(tenant=cast.acme, agent=agent, goal="Call noop 20 times", requested_by=cast.member))
    assert stopped.terminal_reason == "budget_exhausted: Per run"

    errors = []
    page.on("console", lambda message: errors.append(f"{message.text} at {message.location}") if message.type == "error" else None)
    log_in(page, console_server, "finn")
    page.keyboard.press("g")
    page.keyboard.press("c")
    expect(page).to_have_url(re.compile(r"/t/acme/costs/"))
    expect(page.get_by_role("heading", name="Spend over time by agent (simulated)")).to_be_visible()
    page.wait_for_function("() => window.Chart && window.Chart.getChart(document.getElementById('cost-chart'))")
    # Two live refreshes in a row swap the panels under a drawn chart: the second waits for the first (no
    # aborted request), the chart is drawn again, and no CSP rule is broken.
    page.evaluate("""window.refreshed = 0;
        document.body.addEventListener("htmx:afterSettle", () => window.refreshed++);
        for (const _ of [1, 2]) document.body.dispatchEvent(new CustomEvent("spend-changed"));""")
    page.wait_for_function("() => window.refreshed >= 2 && window.Chart.getChart(document.getElementById('cost-chart'))")

    page.get_by_label("Today").check()
    page.get_by_label("Group by").select_option("user")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"group_by=user"))
    groups = page.locator("#cost-groups")
    expect(groups).to_contain_text("max")
    expect(groups).to_contain_text("ada")
    total = page.locator("#cost-total").inner_text()

    with page.expect_download() as download:
        page.locator("#cost-groups").locator("xpath=preceding::a[text()='CSV'][1]").click()
    rows = list(csv.reader(open(download.value.path(), newline="")))
    assert rows[-1][0] == "Total" and "$" + rows[-1][1] == total

    groups.get_by_role("link", name="ada").click()
    expect(page.locator("#cost-runs")).to_contain_text("Looper")
    page.locator("#cost-runs").get_by_role("link", name=re.compile(r"calls of #")).first.click()
    calls = page.locator("#cost-calls")
    expect(calls).to_contain_text("simulated")
    expect(calls).to_contain_text("input_mtok $0.15")

    page.goto(console_server + f"/t/acme/runs/{stopped.number}/")
    expect(page.locator("main")).to_contain_text("budget_exhausted: Per run")
    assert errors == []
