"""An ask-to-continue budget in a real browser: the run waits on its page, a reviewer raises the extension in
the queue and approves, the run completes live; finance's open Costs dashboard follows the spend without a
reload."""

from playwright.sync_api import expect

from costs.models import Budget, BudgetExtension
from costs.services import budget_save
from tests.e2e.test_approvals_queue import open_queue, start_run_as
from tests.e2e.test_shell import log_in
from tests.factories import make_looper

WORKER_ENV = {"MODEL_MAX_OUTPUT_TOKENS": "20", "DEMO_PRICED_AS": "openai:gpt-4o-mini"}


def test_a_reviewer_extends_a_used_up_budget_and_the_run_goes_on_while_costs_update(cast, console_server, browser,
                                                                                   start_worker):
    make_looper(cast.acme)
    budget_save(tenant=cast.acme, actor=cast.finance, budget=Budget(
        name="Acme asks", limit_tokens=600, thresholds=[100], action="ask", extension_tokens=50))
    start_worker(env=WORKER_ENV)
    requester = browser.new_context().new_page()
    status = start_run_as(requester, console_server, "max", agent="Looper", goal="Call noop 12 times")
    expect(requester.locator("#run-card")).to_contain_text("the budget “Acme asks” is used up")

    finance = browser.new_context().new_page()
    log_in(finance, console_server, "finn")
    finance.goto(console_server + "/t/acme/costs/?range=today")
    total = finance.locator("#cost-total")
    before = total.inner_text()

    reviewer = browser.new_context().new_page()
    open_queue(reviewer, console_server, "rita")
    expect(reviewer.locator("#queue-list")).to_contain_text("Acme asks used up")
    # The only request is the one shown (no click: a pane fetched again could undo the edit below).
    expect(reviewer.locator("#approval-detail")).to_contain_text("Budget “Acme asks” is used up")
    extension = reviewer.locator("#extension-tokens")
    expect(extension).to_have_value("50")
    extension.fill("100000")
    expect(extension).to_have_value("100000")
    reviewer.get_by_role("button", name="Approve the extension").click()
    expect(reviewer.locator("#approval-detail")).not_to_contain_text("Approve the extension")

    expect(status).to_have_text("Completed", timeout=30_000)  # on the requester's page, without a reload
    assert BudgetExtension.objects.get().tokens == 100000
    expect(total).not_to_have_text(before, timeout=15_000)  # the dashboard heard the spend (its poll is 60 s)
