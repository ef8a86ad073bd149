"""A 5,000-span trace in Chromium: scroll to the end, search, jump to the next error, open a span's
detail; the DOM holds a few dozen rows throughout (never more than 300). A running run's spans appear
without a reload."""

import re

from django.utils import timezone
from playwright.sync_api import expect

from agents.services import run_start
from tests.e2e.test_shell import log_in
from tests.factories import RENEWAL_GOAL
from tests.factories import make_trace
from tests.factories import make_looper
from traces.models import Span

MAX_ROWS = 300


def rows_in_dom(page) -> int:
    return page.locator(".span-row").count()


def test_a_5000_span_trace_scrolls_searches_jumps_to_errors_and_opens_a_span(cast, console_server, page):
    looper = make_looper(cast.acme)
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 1000 times", requested_by=cast.member)
    run.status, run.finished_at = "completed", timezone.now()
    run.save(update_fields=["status", "finished_at"])
    make_trace(run, 5000, error_every=97)
    log_in(page, console_server, "max")
    page.goto(f"{console_server}/t/acme/traces/{run.number}/")
    expect(page.locator("#trace-status")).to_contain_text("5,000 spans")
    expect(page.locator(".span-row").first).to_contain_text("invoke_agent Looper")
    assert 0 < rows_in_dom(page) <= MAX_ROWS

    viewport = page.locator("#waterfall-viewport")
    for fraction in (0.25, 0.5, 0.75, 1.0):  # scroll to the end in a few jumps
        viewport.evaluate("(el, f) => { el.scrollTop = el.scrollHeight * f; }", fraction)
        page.wait_for_timeout(100)
        assert 0 < rows_in_dom(page) <= MAX_ROWS
    last = Span.objects.filter(run=run).order_by("-started_at").first()  # the last row in tree order too
    expect(page.locator('.span-row[data-row="4999"]')).to_contain_text(last.name)

    page.keyboard.press("/")
    page.keyboard.type("call-2502")
    page.keyboard.press("Enter")
    expect(page.locator("#trace-search-result")).to_have_text("1 span matches")
    expect(page.locator(".span-row.selected")).to_contain_text("execute_tool noop 2502")
    expect(page.locator("#span-detail")).to_contain_text("call-2502")
    assert rows_in_dom(page) <= MAX_ROWS

    page.locator("#waterfall-viewport").focus()
    page.keyboard.press("n")
    selected = page.locator(".span-row.selected")
    expect(selected).to_have_class(re.compile(r"\bfailed\b"))
    expect(page.locator("#trace-status")).to_contain_text("Error: execute_tool noop")
    expect(page.locator("#span-detail")).to_contain_text("error")
    assert rows_in_dom(page) <= MAX_ROWS

    page.keyboard.press("j")
    expect(page.locator(".span-row.selected")).not_to_have_class(re.compile(r"\bfailed\b"))
    row = page.locator(".span-row").nth(3)
    name = Span.objects.get(pk=int(row.get_attribute("data-span"))).name
    row.click()
    expect(page.locator("#span-detail h2")).to_have_text(name)
    assert rows_in_dom(page) <= MAX_ROWS


def test_a_running_runs_spans_appear_without_a_reload(cast, console_server, page, start_worker, renewals):
    start_worker(env={"SPAN_EXPORT_DELAY_MS": "200"})
    log_in(page, console_server, "max")
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    page.goto(f"{console_server}/t/acme/traces/{run.number}/")
    reloads = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == page.main_frame else None)
    expect(page.locator(".span-row", has_text="chat").first).to_be_visible(timeout=15_000)
    expect(page.locator(".span-row", has_text="execute_tool").first).to_be_visible(timeout=15_000)
    assert reloads == []


def test_an_approval_wait_shows_while_open_and_closes_with_the_decision(cast, console_server, page, start_worker,
                                                                        renewals):
    import console.asgi  # noqa: F401  (this process records the decided wait's span, as the web process does)
    from approvals.models import ApprovalRequest
    from approvals.services import approval_decide
    from console.telemetry import current_provider

    start_worker(env={"SPAN_EXPORT_DELAY_MS": "200"})
    log_in(page, console_server, "max")
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    page.goto(f"{console_server}/t/acme/traces/{run.number}/")
    reloads = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == page.main_frame else None)
    waiting = page.locator(".span-row.open", has_text="approval wait email.send")
    expect(waiting).to_be_visible(timeout=20_000)
    expect(waiting).to_contain_text("waiting")
    waiting.click()
    expect(page.locator("#span-detail")).to_contain_text("Waiting for")
    approval = ApprovalRequest.objects.get(run=run)
    expect(page.locator(f'#span-detail a[href$="/approvals/{approval.pk}/"]')).to_be_visible()

    approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    current_provider().force_flush()
    expect(page.locator(".span-row.open")).to_have_count(0, timeout=15_000)
    expect(page.locator(".span-row.kind-approval", has_text="approval wait email.send")).to_be_visible(timeout=15_000)
    assert reloads == []


def test_a_trace_bigger_than_a_page_paints_its_first_rows_then_fills_in(cast, console_server, page):
    """The page carries the first screenful; the rest comes in pages of 5,000 rows after the first paint, and
    then the whole trace scrolls, searches and jumps to errors as one."""
    from traces.selectors import HEAD_ROWS, PAGE_ROWS

    spans = 2 * PAGE_ROWS + 1000
    looper = make_looper(cast.acme)
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3000 times", requested_by=cast.member)
    run.status, run.finished_at = "completed", timezone.now()
    run.save(update_fields=["status", "finished_at"])
    make_trace(run, spans, error_every=97)
    log_in(page, console_server, "max")
    carried, held = [], []
    page.on("request", lambda request: carried.append(request.url) if "/skeleton/" in request.url else None)
    page.route(re.compile(r"/skeleton/\?page="), lambda route: held.append(route))  # the rest waits until we have looked
    page.goto(f"{console_server}/t/acme/traces/{run.number}/")
    expect(page.locator(".span-row").first).to_contain_text("invoke_agent Looper")  # painted from the page alone
    expect(page.locator("#trace-status")).to_have_text(f"Showing the first {HEAD_ROWS} of {spans:,} spans; loading the rest…")
    assert len(held) == 1  # page 0, asked for after the first paint, held
    page.unroute(re.compile(r"/skeleton/\?page="))  # lets the held request go on
    expect(page.locator("#trace-status")).to_have_text(f"{spans:,} spans", timeout=20_000)  # all pages in
    assert sorted(url.rpartition("page=")[2] for url in carried) == ["0", "1", "2"]  # never the whole at once
    assert 0 < rows_in_dom(page) <= MAX_ROWS

    viewport = page.locator("#waterfall-viewport")
    viewport.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    last = Span.objects.filter(run=run).order_by("-started_at").first()
    expect(page.locator(f'.span-row[data-row="{spans - 1}"]')).to_contain_text(last.name)
    assert rows_in_dom(page) <= MAX_ROWS
    page.keyboard.press("/")
    page.keyboard.type(f"call-{spans - 3}")
    page.keyboard.press("Enter")
    expect(page.locator(".span-row.selected")).to_contain_text(f"execute_tool noop {spans - 3}")
