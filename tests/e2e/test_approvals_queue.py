"""The reviewer queue in a real browser: edit-and-approve while the requester watches; approve with a key."""

import re

from playwright.sync_api import expect

from demo.models import EmailMessage
from demo.seed import seed_demo_systems
from tests.e2e.test_shell import log_in
from tests.factories import RENEWAL_GOAL


def start_run_as(page, console_server, username, agent=None, goal=RENEWAL_GOAL):
    """Log in, start a run, and wait until it waits for a person; the status element."""
    log_in(page, console_server, username)
    if agent:
        page.get_by_label("Agent", exact=True).select_option(label=agent)
    page.get_by_label("Goal").fill(goal)
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
    reviewer.keyboard.press("e")  # the form built from email.send's schema, first field focused
    recipient = reviewer.locator("#edit-arguments input[name='arg:to']")
    expect(recipient).to_be_focused()
    recipient.fill("dana@acme.example")
    reviewer.locator("#edit-arguments textarea[name='arg:body']").fill("Edited by the reviewer.")
    reviewer.locator("#edit-arguments .schema-form button[type=submit]").click()
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
    expect(page.locator("#approvals-badge [data-count]")).to_have_text("1")
    expect(page.get_by_role("status").filter(has_text="waits for approval")).to_be_visible()

    page.keyboard.press("j")
    expect(page.locator("#approval-detail")).to_contain_text("Why the agent asks")
    page.keyboard.press("a")
    expect(page.locator("#approval-detail")).to_contain_text("Approved by rita")
    expect(status).to_have_text("Completed", timeout=20_000)
    expect(page.locator("#approvals-badge")).to_be_hidden()


def test_a_reviewer_edits_a_plan_from_the_keyboard_and_the_agent_follows_it(cast, console_server, browser,
                                                                            start_worker):
    seed_demo_systems(cast.acme)
    start_worker()
    requester = browser.new_context().new_page()
    status = start_run_as(requester, console_server, "max", agent="Renewals assistant (plan reviewed)")
    expect(requester.locator("#run-plan")).to_contain_text("The plan waits for approval")

    reviewer = browser.new_context().new_page()
    open_queue(reviewer, console_server, "rita")
    expect(reviewer.locator("#approval-detail")).to_contain_text("Proposed plan")
    reviewer.keyboard.press("e")
    steps = reviewer.locator("#edit-arguments [data-plan-editor] input")
    expect(steps.first).to_be_focused()
    steps.nth(2).focus()  # "Send it to the success manager": delete it with its button
    reviewer.locator("#edit-arguments [data-plan-editor] li").nth(2).get_by_role("button", name="Delete step").click()
    steps.nth(1).press("Enter")  # a new step below "Draft the renewal email"
    reviewer.keyboard.type("Book a review call with the success manager")
    reviewer.keyboard.press("Alt+ArrowUp")  # above the draft
    expect(steps).to_have_count(5)  # 4 steps and the empty one to add with
    assert [steps.nth(i).input_value() for i in range(4)] == [
        "Look up the account and its notes", "Book a review call with the success manager",
        "Draft the renewal email", "Report what was done"]
    reviewer.get_by_role("button", name="Approve the edited plan").click()
    # The pane moves on: to the next request if the agent already asked one (it may be that fast), else the
    # decided plan stays in view. Either way it says what was decided; the edit shows on the run below.
    expect(reviewer.locator("#approval-detail .decided-note")).to_contain_text("The plan on run #1 approved")

    plan = requester.locator("#run-plan")  # live, without a reload
    expect(plan).to_contain_text("Book a review call with the success manager", timeout=20_000)
    expect(plan).not_to_contain_text("Send it to the success manager")
    expect(status).to_have_text("Waiting For Human", timeout=20_000)
    expect(requester.locator("#run-card")).to_contain_text("calendar.book")  # the agent follows the edited plan


def test_a_refused_edit_is_shown_with_what_was_typed(cast, console_server, page):
    from agents.services import run_start
    from tests.factories import advance

    seed_demo_systems(cast.acme)
    advance(run_start(tenant=cast.acme, agent=cast.acme.agents.get(slug="renewals"), goal=RENEWAL_GOAL,
                      requested_by=cast.member))
    open_queue(page, console_server, "rita")
    page.keyboard.press("e")
    recipient = page.locator("#edit-arguments input[name='arg:to']")
    recipient.fill("not-an-address")
    page.locator("#edit-arguments .schema-form button[type=submit]").click()
    expect(page.locator("#arg-to-error")).to_contain_text("value is not a valid email address")  # a 422, beside the field
    expect(page.locator("#edit-arguments input[name='arg:to']")).to_have_value("not-an-address")
    expect(page.locator("#edit-arguments input[name='arg:to']")).to_be_focused()  # the edit stays open, on the field


def waiting_requests(cast, count):
    from agents.services import run_start
    from tests.factories import advance

    seed_demo_systems(cast.acme)
    renewals = cast.acme.agents.get(slug="renewals")
    return [advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
            .approval_requests.get() for _ in range(count)]


def watch_the_pane_traffic(page):
    """What the page asks of the server: the detail panes it GETs (paths), and of each decision POST
    whether it was answered with the note alone (the page shows a pane it fetched ahead)."""
    traffic = {"panes": [], "decisions": []}
    page.on("request", lambda r: r.method == "GET" and re.search(r"/approvals/\d+/$", r.url)
            and traffic["panes"].append(re.sub(r"^https?://[^/]+", "", r.url)))
    page.on("response", lambda r: r.request.method == "POST" and r.url.endswith("/decision/")
            and traffic["decisions"].append("note alone" if "hx-trigger" in r.headers else "whole pane"))
    return traffic


def open_queue_at(page, console_server, approval, prefetched):
    """The queue sorted oldest first, ``approval`` in the pane, once the page holds the pane of ``prefetched``."""
    page.goto(console_server + f"/t/acme/approvals/?sort=oldest&id={approval.pk}")
    expect(page.locator("#approval-detail")).to_have_attribute("data-prefetched", str(prefetched.pk))


def test_the_selected_request_stays_selected_when_the_list_changes_live(cast, console_server, page):
    from agents.services import run_start
    from tests.factories import advance

    seed_demo_systems(cast.acme)
    agent = cast.acme.agents.get(slug="renewals")

    def request():
        run = advance(run_start(tenant=cast.acme, agent=agent, goal=RENEWAL_GOAL, requested_by=cast.member))
        return run.approval_requests.get()

    first = request()  # the oldest, first in the list
    second = request()
    page.goto(console_server + "/")  # log in first, then open the queue sorted oldest first
    log_in(page, console_server, "rita")
    traffic = watch_the_pane_traffic(page)
    open_queue_at(page, console_server, first, prefetched=second)
    page.keyboard.press("j")  # to the request whose pane the page fetched ahead: shown without asking again
    selected = page.locator("#queue-list .queue-item.selected")
    expect(selected).to_have_attribute("id", f"queue-item-{second.pk}")
    expect(page.locator("#approval-detail article")).to_have_attribute("data-approval-id", str(second.pk))
    expect(page.locator("#approval-detail")).to_contain_text("Why the agent asks")
    expect(page).to_have_url(re.compile(rf"\?sort=oldest&id={second.pk}$"))
    assert traffic["panes"].count(f"/t/acme/approvals/{second.pk}/") == 1  # the prefetch, not the key
    third = request()
    expect(page.locator(f"#queue-item-{third.pk}")).to_be_visible()  # arrived live
    expect(selected).to_have_count(1)
    expect(selected).to_have_attribute("id", f"queue-item-{second.pk}")


def test_after_a_decision_the_queue_moves_on_and_a_pane_decided_elsewhere_updates(cast, console_server, browser):
    first, second = waiting_requests(cast, 2)
    page = browser.new_context().new_page()
    open_queue(page, console_server, "rita")
    traffic = watch_the_pane_traffic(page)
    open_queue_at(page, console_server, first, prefetched=second)  # the page fetches the next pane ahead
    page.keyboard.press("r")  # reject: the reason is asked for
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.locator("#reject-reason-error")).to_contain_text("Say why you reject it")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.locator("#reject-reason").fill("Wrong recipient")
    asked_before = len(traffic["panes"])
    page.get_by_role("button", name="Reject", exact=True).click()
    detail = page.locator("#approval-detail")
    expect(detail).to_contain_text(f"email.send on run #{first.run.number} rejected. Next request:")
    expect(detail.locator("article")).to_have_attribute("data-approval-id", str(second.pk))
    expect(detail.locator("article")).to_contain_text("Why the agent asks")  # the whole pane, under the note
    expect(page.locator("#queue-list .queue-item.selected")).to_have_attribute("id", f"queue-item-{second.pk}")
    expect(page).to_have_url(re.compile(rf"\?sort=oldest&id={second.pk}$"))
    # The pane shown is the one fetched ahead: the decision came back as the note alone, no pane was asked after.
    assert traffic["decisions"] == ["whole pane", "note alone"]  # the refusal, then the decision
    assert f"/t/acme/approvals/{second.pk}/" not in traffic["panes"][asked_before:]
    page.reload()
    expect(page.locator("#approval-detail article")).to_have_attribute("data-approval-id", str(second.pk))

    other = browser.new_context().new_page()  # someone else decides the request this pane shows
    open_queue(other, console_server, "ada")
    other.goto(console_server + f"/t/acme/approvals/?id={second.pk}")
    other.get_by_role("button", name="Approve").click()
    expect(detail).to_contain_text("decided by someone else while you had it open", timeout=10_000)
    expect(detail).to_contain_text("Approved by ada")
    page.go_back()
    expect(page.locator("#approval-detail article")).to_have_attribute("data-approval-id", str(first.pk))


def test_when_the_next_request_was_decided_elsewhere_meanwhile_the_whole_pane_comes(cast, console_server, browser):
    from approvals.models import ApprovalRequest

    first, second, third = waiting_requests(cast, 3)
    page = browser.new_context().new_page()
    open_queue(page, console_server, "rita")
    traffic = watch_the_pane_traffic(page)
    open_queue_at(page, console_server, first, prefetched=second)
    # ada decides the second one in the moment before the page hears of it: the page still holds its pane.
    ApprovalRequest.objects.filter(pk=second.pk).update(status="approved", decided_by=cast.admin)
    page.get_by_role("button", name="Approve").click()
    detail = page.locator("#approval-detail")
    expect(detail).to_contain_text(f"email.send on run #{first.run.number} approved. Next request:")
    expect(detail.locator("article")).to_have_attribute("data-approval-id", str(third.pk))
    expect(detail.locator("article")).to_contain_text("Why the agent asks")
    expect(page.locator("#queue-list .queue-item.selected")).to_have_attribute("id", f"queue-item-{third.pk}")
    expect(page).to_have_url(re.compile(rf"\?sort=oldest&id={third.pk}$"))
    assert traffic["decisions"] == ["whole pane"]
