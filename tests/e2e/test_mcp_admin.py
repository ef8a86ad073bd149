"""In a real browser: an admin connects the test MCP server, classifies a tool, gives it to a new agent, and a run
of that agent (on a real worker) uses it."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import start_console
from tests.e2e.test_shell import log_in
from tests.mcp_servers.test_mcp_servers import RunningServer

EXTRA = {"WEBHOOK_ALLOW_HTTP": "1", "PROCTOR_EXTRA_APPS": "tests.mcp_servers.probe"}


@pytest.fixture
def web_with_mcp(django_db_setup, tmp_path):
    """A console process that may reach an MCP server on loopback (development setting) and knows the probe's model."""
    proc, url = start_console(tmp_path / "web.log", EXTRA)
    yield url
    proc.stop()


def test_an_admin_connects_an_mcp_server_and_a_run_uses_its_tool(cast, page, web_with_mcp, start_worker, tmp_path,
                                                                 settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    mcp = RunningServer(tmp_path).start(tmp_path)
    start_worker(env=EXTRA)
    try:
        log_in(page, web_with_mcp, "ada")
        page.goto(web_with_mcp + "/t/acme/admin/mcp/")
        page.locator("#id_name").fill("test")
        page.locator("#id_url").fill(mcp.url)
        page.locator("#id_bearer").fill("s3cret-token")
        page.get_by_role("button", name="Add server").click()
        expect(page).to_have_url(re.compile(r"/admin/mcp/\d+/$"))
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator("#mcp-tool-lookup")).to_contain_text("mcp:test.lookup")
        expect(page.locator("body")).not_to_contain_text("s3cret-token")
        row = page.locator("#mcp-tool-lookup")
        row.get_by_label("Risk of mcp:test.lookup").select_option(label="0 · read (suggested)")
        row.get_by_role("button", name="Classify").click()
        expect(page.locator("#mcp-tool-lookup")).to_contain_text("classified by ada")

        page.goto(web_with_mcp + "/t/acme/agents/new/")
        page.locator("#id_name").fill("MCP caller")
        page.locator("#id_instructions").fill("Look the account up with the MCP tool, then say what it said.")
        page.locator("#id_model").fill("mcpprobe:first-tool")
        page.get_by_label("mcp:test.lookup").check()
        page.locator("#id_plan_mode").uncheck()
        page.get_by_role("button", name="Create agent").click()
        expect(page).to_have_url(re.compile(r"/t/acme/agents/mcp-caller/$"))

        page.goto(web_with_mcp + "/t/acme/runs/")
        page.get_by_label("Agent", exact=True).select_option(label="MCP caller")
        page.get_by_label("Goal").fill("What plan is ACME-042 on?")
        page.get_by_role("button", name="Start run").click()
        expect(page.locator("#run-status")).to_have_text("Completed", timeout=30_000)
        expect(page.locator("#run-card")).to_contain_text("Account ACME-042")
        expect(page.locator("#run-card")).to_contain_text('"authorized": true')  # the bearer reached the server
    finally:
        mcp.proc.stop()
