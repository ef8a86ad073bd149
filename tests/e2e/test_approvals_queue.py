"""The reviewer queue in a real browser: edit-and-approve while the requester watches; approve with a key."""

import json
import re

from playwright.sync_api import expect

from agents.demo_data import seed_demo_systems
from agents.models import EmailMessage
from tests.e2e.test_shell import log_in
from tests.factories import RENEWAL_GOAL


def start_run_as(page, console_server, username):
    log_in(page, console_server, username)
    page.get_by_label("Goal").fill(RENEWAL_GOAL)
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/t/acme/runs/\d+/$"))
    status = page.locator("#run-status")
    expect(status).to_have_text("Waiting For Human", timeout=20_000)
    return status


def open_queue(page, console_server, username):
    log_in(page, console_server, username)
    page.goto(console_server + "/t/acme/approvals/")
    page.wait_for_load_state("load")


def test_a_reviewer_edits_and_approves_while_the_requester_watches_live(cast, console_server, browser, start_worker):
    seed_demo_systems(cast.acme)
    start_worker()
    requester = browser.new_context().new_page()
    status = start_run_as(requester, console_server, "max")

    reviewer = browser.new_context().new_page()
    open_queue(reviewer, console_server, "rita")
    reviewer.keyboard.press("e")
    editor = reviewer.locator("#edit-arguments textarea")
    expect(editor).to_be_focused()
    arguments = json.loads(editor.input_value())
    arguments.update(to="dana@acme.example", body="Edited by the reviewer.")
    editor.fill(json.dumps(arguments))
    reviewer.get_by_role("button", name="Approve edited call").click()
    expect(reviewer.locator("#approval-detail")).to_contain_text("Edited before approval")

    expect(status).to_have_text("Completed", timeout=20_000)  # on the requester's page, without a reload
    requester.goto(console_server + "/t/acme/demo-systems/")
    expect(requester.locator("#outbox")).to_contain_text("dana@acme.example")
    sent = EmailMessage.objects.filter(sent_at__isnull=False)
    assert [(m.to, m.body) for m in sent] == [("dana@acme.example", "Edited by the reviewer.")]


def test_a_new_request_arrives_live_and_is_approved_from_the_keyboard(cast, console_server, page, browser,
                                                                     start_worker):
    seed_demo_systems(cast.acme)
    start_worker()
    open_queue(page, console_server, "rita")
    expect(page.locator("#queue-list")).to_contain_text("Nothing waits for a decision")
    expect(page.locator("#approvals-badge")).to_be_hidden()

    requester = browser.new_context().new_page()
    status = start_run_as(requester, console_server, "max")
    expect(page.locator("#queue-list")).to_contain_text("email.send")  # no reload
    expect(page.locator("#approvals-badge")).to_have_text("1")
    expect(page.get_by_role("status").filter(has_text="waits for approval")).to_be_visible()

    page.keyboard.press("j")
    expect(page.locator("#approval-detail")).to_contain_text("Why the agent wants it")
    page.keyboard.press("a")
    expect(page.locator("#approval-detail")).to_contain_text("Approved by rita")
    expect(status).to_have_text("Completed", timeout=20_000)
    expect(page.locator("#approvals-badge")).to_be_hidden()
