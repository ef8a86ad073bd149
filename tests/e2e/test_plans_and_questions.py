"""Plans and questions in a real browser: a paused run's plan edited from the keyboard and followed;
a question the agent asks answered on the run page."""

from playwright.sync_api import expect

from demo.models import CrmNote, EmailMessage
from demo.seed import seed_demo_systems
from tests.e2e.test_approvals_queue import start_run_as


def test_a_paused_runs_plan_is_edited_and_the_agent_follows_it(cast, console_server, page, start_worker):
    seed_demo_systems(cast.acme)
    start_worker()
    status = start_run_as(page, console_server, "rita")  # waits for email.send
    run_url = page.url
    page.get_by_role("button", name="Pause").click()
    expect(status).to_have_text("Paused")
    page.locator("#edit-plan").click()
    page.wait_for_load_state("load")

    steps = page.locator("[data-plan-editor] input")
    expect(steps.first).to_have_value("Send it to the success manager")  # the done steps are not editable
    page.locator("[data-plan-editor] li").first.get_by_role("button", name="Delete step").click()
    expect(steps.first).to_be_focused()
    steps.first.press("End")
    steps.first.press("Enter")  # a new step below "Report what was done"
    page.keyboard.type("Write a note on the account")
    page.keyboard.press("Alt+ArrowUp")
    page.keyboard.press("Control+Enter")  # save

    expect(page).to_have_url(run_url)
    expect(page.locator("#run-plan")).to_contain_text("Write a note on the account")
    expect(page.locator("#run-timeline")).to_contain_text("plan edited by rita")
    page.get_by_role("button", name="Resume").click()
    expect(status).to_have_text("Waiting For Human")  # the pending send still needs its decision
    page.get_by_placeholder("Reason (sent to the agent on reject)").fill("Sending is off the plan")
    page.get_by_role("button", name="Reject").click()
    expect(status).to_have_text("Completed", timeout=20_000)
    expect(page.locator("#run-card")).to_contain_text("prepared and not sent")
    assert CrmNote.objects.filter(author="agent").count() == 1
    assert not EmailMessage.objects.filter(sent_at__isnull=False).exists()


def test_the_agent_asks_which_account_and_the_answer_on_the_run_page_carries_it_on(cast, console_server, page,
                                                                                start_worker):
    seed_demo_systems(cast.acme)
    start_worker()
    start_run_as(page, console_server, "rita", goal="Prepare the renewal for Acme and email it to its success manager")
    card = page.locator("#run-card")
    expect(card).to_contain_text("Several accounts match the goal")
    card.get_by_label("Your answer").fill("Anvil Works")
    card.get_by_role("button", name="Answer").click()
    expect(card).to_contain_text("csm-017@acme.example", timeout=20_000)  # now the email, to the chosen account
    expect(card).to_contain_text("“Anvil Works”")
