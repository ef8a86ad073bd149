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
