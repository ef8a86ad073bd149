"""Start a demo run in the UI, watch it wait for approval and complete, live, without reloading."""

import re

from playwright.sync_api import expect

from demo.seed import seed_demo_systems
from tests.e2e.test_shell import log_in


def test_a_run_waits_for_approval_then_completes_live(cast, console_server, page, start_worker):
    seed_demo_systems(cast.acme)
    start_worker()
    log_in(page, console_server, "rita")
    page.get_by_label("Goal").fill("Prepare the renewal plan for account ACME-042 and email it to its success manager")
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/t/acme/runs/\d+/$"))
    reloads = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == page.main_frame else None)
    status = page.locator("#run-status")
    expect(status).to_have_text("Waiting For Human", timeout=20_000)
    page.get_by_role("button", name="Approve").click()
    expect(status).to_have_text("Completed", timeout=20_000)
    assert reloads == []  # everything above arrived over the websocket
    expect(page.locator("#run-timeline")).to_contain_text("email.send")
    page.goto(console_server + "/t/acme/demo-systems/")
    expect(page.locator("#outbox")).to_contain_text("csm-042@acme.example")
