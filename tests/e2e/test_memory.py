"""The Memory page in a real Chromium: search as you type, correct (the history shows the diff), pin, delete
with confirmation, confirm a proposed memory, and the "To confirm" badge follows."""

import re

from playwright.sync_api import expect

from memory import services
from tests.e2e.test_shell import log_in


def test_a_person_searches_corrects_pins_deletes_and_confirms(cast, console_server, page):
    keep = services.memory_create(tenant=cast.acme, actor=cast.member, scope="user", user=cast.member,
                                  type="preference", subject="email format",
                                  content="Max prefers a short bullet summary at the top of emails.")
    services.memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact",
                           content="The champion at ACME-042 is Dana (VP Ops).")
    doomed = services.memory_create(tenant=cast.acme, actor=cast.member, scope="user", user=cast.member,
                                    type="fact", content="Max parks in spot 17.")
    proposed = services.memory_create(tenant=cast.acme, actor=None, scope="user", user=cast.member,
                                      type="preference", content="Max likes calls on Fridays.", status="proposed")
    log_in(page, console_server, "max")
    page.goto(console_server + "/t/acme/memory/")
    badge = page.locator("#memory-confirm-badge")
    expect(badge).to_contain_text("1")

    # Search as you type (words: the key), on the tenant tab.
    page.get_by_role("link", name="Tenant").click()
    page.keyboard.press("/")
    page.keyboard.type("ACME-042")
    expect(page.locator("#memory-list")).to_contain_text("The champion at ACME-042 is Dana")

    # Correct → a new version whose diff shows.
    page.goto(console_server + f"/t/acme/memory/?tab=me&id={keep.pk}")
    page.keyboard.press("e")
    page.locator("#memory-edit-content").fill("Max prefers a three-bullet summary at the top of emails.")
    page.locator("#memory-save").click()
    expect(page.locator("#memory-detail")).to_contain_text("Saved as version 2")
    expect(page.locator(".memory-version ins").first).to_have_text("three-bullet")
    expect(page.locator(".memory-version del").first).to_have_text("short bullet")

    # Pin with the keyboard.
    page.locator("body").click()
    page.keyboard.press("p")
    expect(page.locator("#memory-detail")).to_contain_text("Pinned")

    # Delete: refused without the confirmation, done with it.
    page.goto(console_server + f"/t/acme/memory/?tab=me&id={doomed.pk}")
    page.keyboard.press("d")
    page.locator("#memory-delete-button").click()
    expect(page.locator("#memory-detail .error")).to_contain_text("Yes, delete it everywhere")
    page.locator("#memory-delete-confirm").check()
    page.locator("#memory-delete-button").click()
    expect(page.locator("#memory-detail")).to_contain_text("content is gone everywhere")
    expect(page.locator("#memory-list")).not_to_contain_text("spot 17")

    # Confirm the proposed one; the badge empties.
    page.goto(console_server + f"/t/acme/memory/?tab=confirm&id={proposed.pk}")
    page.locator("#memory-confirm").click()
    expect(page.locator("#memory-detail")).to_contain_text("Confirmed")
    expect(badge).to_be_hidden(timeout=10_000)
    expect(page).to_have_url(re.compile(r"/t/acme/memory/"))


def test_the_run_page_and_the_approval_show_the_memories_each_step_used(cast, console_server, page, browser,
                                                                       start_worker):
    """Max starts a demo run: as its steps run, the run page's "Memories used" panel fills in live with his own
    preference and the tenant's fact. Rita, reviewing its email, sees the tenant's fact and that a memory she
    may not see was used, never its text."""
    import re

    from approvals.models import ApprovalRequest
    from demo.seed import seed_demo_systems

    seed_demo_systems(cast.acme)
    services.memory_create(tenant=cast.acme, actor=cast.member, scope="user", user=cast.member, type="preference",
                           subject="email format", content="Max prefers a short bullet summary at the top of emails.")
    services.memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact", subject="ACME-042 renewal",
                           content="The ACME-042 renewal plan goes to Dana, the champion.")
    start_worker()
    log_in(page, console_server, "max")
    page.get_by_label("Goal").fill("Prepare the renewal plan for account ACME-042 and email it to its success manager")
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/t/acme/runs/\d+/$"))
    expect(page.locator("#run-status")).to_have_text("Waiting For Human", timeout=20_000)
    panel = page.locator("#run-memories")
    expect(panel).to_contain_text("Step 1", timeout=10_000)  # arrived with the live timeline, no reload
    expect(panel).to_contain_text("Max prefers a short bullet summary")
    expect(panel).to_contain_text("goes to Dana, the champion")
    expect(panel.locator("a", has_text=re.compile(r"memory #\d+ v1")).first).to_be_visible()

    approval = ApprovalRequest.objects.get(run__tenant=cast.acme)
    reviewer = browser.new_context().new_page()
    log_in(reviewer, console_server, "rita")
    reviewer.goto(console_server + f"/t/acme/approvals/?id={approval.pk}")
    memories = reviewer.locator("#approval-memories")
    expect(memories).to_contain_text("a memory you cannot see")
    expect(memories).to_contain_text("goes to Dana, the champion")
    expect(memories).not_to_contain_text("bullet summary")

    # Rita approves; the run's last step used its memories too, and Max's panel shows it without a reload.
    from approvals.services import approval_decide
    from memory.models import MemoryUse

    reloads = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == page.main_frame else None)
    approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    expect(page.locator("#run-status")).to_have_text("Completed", timeout=20_000)
    last = max(MemoryUse.objects.filter(run=approval.run).values_list("step", flat=True))
    expect(panel.locator(f'section[data-step="{last}"]')).to_contain_text("bullet summary", timeout=10_000)
    assert reloads == []
