"""The console shell in a real Chromium."""

import re

from playwright.sync_api import expect

from tests.factories import PASSWORD


def log_in(page, base_url, username):
    page.goto(base_url + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/t/[\w-]+/runs/$"))
    page.wait_for_load_state("load")  # the deferred scripts (keyboard shortcuts, live updates) are in


def test_a_reviewer_sees_the_shell_is_refused_globex_and_logs_out(cast, console_server, page):
    log_in(page, console_server, "rita")
    expect(page).to_have_url(re.compile(r"/t/acme/runs/$"))
    header = page.locator("header.topbar")
    expect(header).to_contain_text("Acme")
    expect(header).to_contain_text("Reviewer")
    expect(page.get_by_role("navigation", name="Sections").get_by_role("link")).to_have_text(
        ["Runs", "Agents", "Approvals", "Memory", "Traces"]
    )

    response = page.goto(console_server + "/t/globex/runs/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()

    page.goto(console_server + "/t/acme/costs/")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto(console_server + "/t/acme/runs/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))


def test_keyboard_navigation_and_the_tenant_switcher(cast, console_server, page):
    log_in(page, console_server, "sam")
    page.keyboard.press("g")
    page.keyboard.press("a")
    expect(page).to_have_url(re.compile(r"/t/acme/approvals/$"))
    page.wait_for_load_state("load")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    page.locator(".switcher summary").click()
    page.get_by_role("button", name=re.compile("^Globex")).click()
    expect(page).to_have_url(re.compile(r"/t/globex/runs/$"))
    expect(page.locator("header.topbar")).to_contain_text("Admin")


def test_pages_carry_a_csp_and_load_no_blocked_resource(cast, console_server, page):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    response = page.goto(console_server + "/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log_in(page, console_server, "ada")
    page.goto(console_server + "/t/acme/admin/audit/")
    expect(page.get_by_role("heading", name=re.compile("Admin"))).to_be_visible()
    assert errors == []
