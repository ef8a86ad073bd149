"""The API's docs page (/api/v1/docs) in a real Chromium: Swagger UI from our static files, under the strict CSP."""

import re

from playwright.sync_api import expect

from console.services import api_token_create


def test_the_api_docs_show_every_operation_and_try_one_out(cast, console_server, page):
    problems = []
    page.on("console", lambda message: problems.append(f"{message.text} {message.location}") if message.type in ("error", "warning") else None)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on("response", lambda answer: problems.append(f"{answer.status}: {answer.url}") if answer.status >= 400 else None)
    response = page.goto(console_server + "/api/v1/docs")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy and "http" not in policy

    expect(page.get_by_role("heading", name=re.compile("Proctor API"))).to_be_visible()
    for path in ["/api/v1/runs", "/api/v1/runs/{number}/cancel", "/api/v1/approvals/{approval_id}/decisions",
                 "/api/v1/whoami"]:
        expect(page.get_by_text(path, exact=True).first).to_be_visible()

    token = api_token_create(tenant=cast.acme, name="docs", actor=cast.admin).secret
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input").fill(token)
    page.locator(".modal-ux").get_by_role("button", name="Apply credentials").click()
    page.locator(".modal-ux").get_by_role("button", name="Close").first.click()
    operation = page.locator("#operations-default-console_api_whoami")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text('"tenant_name": "Acme"')
    assert problems == []
