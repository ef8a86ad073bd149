"""P6 (timeline part): a run's trace of 50, 5,000 and 50,000 spans in real Chromium.

The ASGI app under uvicorn (production settings, like P3) serves the timeline page; Playwright drives
/usr/bin/chromium. One sample = one navigation to the page: navigation start → the first span rows
painted (the page marks `trace:first-rows` in the animation frame after it placed the rows it carries,
the skeleton's first screenful; the rest comes after, in pages). Then the
page is scrolled through (20 positions) counting the rows in the DOM. Over plain HTTP (same server,
same session): the skeleton's size and server time (its Server-Timing header) and the in-trace
search's server time. Ratios: first paint at each size to first paint at 50 spans (target: 50,000 ≤
1.5×), search to one skeleton request (target ≤ 2×).
"""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path

from bench.agent_loop import _django, log_path
from bench.click_to_resume import _session, _web
from bench.harness import Context, Row, measure, summary, table

# P6T_SIZES=50,500 P6T_NAVIGATIONS=3 checks the measurement quickly; the targets are for the defaults.
SIZES = tuple(int(n) for n in os.environ.get("P6T_SIZES", "50,5000,50000").split(","))
NAVIGATIONS = int(os.environ.get("P6T_NAVIGATIONS", "15"))
CHROMIUM = "/usr/bin/chromium"


def _seed(size: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from agents.models import Run
    from agents.services import run_start
    from console.models import Membership, Role, Tenant
    from tests.factories import make_looper, make_trace

    tenant, _ = Tenant.objects.get_or_create(slug="trace-bench", defaults={"name": "Trace bench"})
    user, _ = get_user_model().objects.get_or_create(username="trace-bench")
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.MEMBER})
    from agents.models import Agent

    agent = Agent.objects.filter(tenant=tenant, slug="looper").first() or make_looper(tenant)
    goal = f"Call noop {size} times"
    run = Run.objects.for_tenant(tenant).filter(goal=goal).first()
    if run is None:
        run = run_start(tenant=tenant, agent=agent, goal=goal, requested_by=user)
        Run.objects.filter(pk=run.pk).update(status="completed", finished_at=timezone.now())
        run.refresh_from_db()
        make_trace(run, size, error_every=97)
    return tenant, user, run


def _live_reads(tenant, user, size: int) -> tuple:
    """A running run of ``size`` spans: reading its skeleton after each new step (5 spans: the step, its model
    and tool calls, checkpoint and budget check), as the timeline does live, with the process's kept tree (only
    the new spans read and rolled up) and from scratch (the whole trace read and rolled up every time)."""
    from datetime import timedelta

    from agents.models import Agent, Run
    from agents.services import run_start
    from tests.factories import make_trace
    from traces import selectors
    from traces.models import Span

    agent = Agent.objects.get(tenant=tenant, slug="looper")
    run = run_start(tenant=tenant, agent=agent, goal=f"Call noop {size} times, live", requested_by=user)
    make_trace(run, size, finished=False)
    Run.objects.filter(pk=run.pk).update(status="running")
    run.refresh_from_db()
    step = [size]

    def new_step():
        step[0] += 1
        at = run.created_at + timedelta(seconds=step[0])
        parent = f"{0xe000000000000000 + step[0]:016x}"
        rows = [Span(tenant_id=run.tenant_id, run=run, trace_id=run.trace_id, span_id=parent, name=f"step {step[0]}",
                     kind="step", started_at=at, ended_at=at + timedelta(milliseconds=40),
                     parent_span_id=run.trace_id[:16])]
        rows += [Span(tenant_id=run.tenant_id, run=run, trace_id=run.trace_id, span_id=f"{0xf000000000000000 + step[0] * 8 + k:016x}",
                      parent_span_id=parent, name=f"{kind} {step[0]}", kind=kind, started_at=at + timedelta(milliseconds=k),
                      ended_at=at + timedelta(milliseconds=k + 5), tokens=30 if kind == "model" else 0)
                 for k, kind in enumerate(("model", "tool", "checkpoint", "budget"))]
        Span.objects.bulk_create(rows)

    def kept():
        new_step()
        selectors.trace_skeleton(tenant=tenant, run=run)

    def scratch():
        new_step()
        selectors._live_trees.clear()
        selectors.trace_skeleton(tenant=tenant, run=run)

    selectors.trace_skeleton(tenant=tenant, run=run)
    return summary(measure(kept, 20, warmup=2)), summary(measure(scratch, 20, warmup=2))


def _get(port: int, path: str, cookie: str) -> tuple[float, int, float]:
    """(seconds, bytes, the server's own ms from Server-Timing)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    connection.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}")
    server = float(response.getheader("Server-Timing", "app;dur=0").split("dur=")[1])
    connection.close()
    return elapsed, len(body), server


def run(ctx: Context) -> str:
    _django(ctx)
    from playwright.sync_api import sync_playwright

    print("  seeding traces of " + ", ".join(f"{n:,}" for n in SIZES) + " spans ...", flush=True)
    seeded = {size: _seed(size) for size in SIZES}
    from django.db import connection

    with connection.cursor() as cursor:  # what autovacuum does to a table after bulk inserts (index-only counts)
        cursor.execute("VACUUM ANALYZE traces_span")
    tenant, user, _ = seeded[SIZES[0]]
    cookie = _session(user)
    web, port = _web(ctx, log_path("p6-web"))
    paints, dom_max, skeleton_stats, search_stats, sizes, head_stats, page_stats = {}, {}, {}, {}, {}, {}, {}
    from traces.selectors import trace_skeleton

    cold = {}
    for size, (trace_tenant, _, trace_run) in seeded.items():  # what materializing costs once, when a run ends
        started = time.perf_counter()
        trace_skeleton(tenant=trace_tenant, run=trace_run)
        cold[size] = (time.perf_counter() - started) * 1000
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}])
            page = context.new_page()
            for size, (_, _, trace_run) in seeded.items():
                url = f"http://127.0.0.1:{port}/t/{tenant.slug}/traces/{trace_run.number}/"
                samples = []
                for n in range(NAVIGATIONS + 2):
                    page.goto(url)
                    page.wait_for_function("() => performance.getEntriesByName('trace:first-rows').length > 0", timeout=60_000)
                    painted = page.evaluate("performance.getEntriesByName('trace:first-rows')[0].startTime")
                    if n >= 2:  # two warm-ups: the browser's and the server's caches
                        samples.append(painted / 1000)
                paints[size] = summary(samples)
                most = 0
                for step in range(21):
                    page.evaluate("(f) => { const v = document.getElementById('waterfall-viewport');"
                                  " v.scrollTop = v.scrollHeight * f; v.dispatchEvent(new Event('scroll')); }", step / 20)
                    page.wait_for_timeout(30)
                    most = max(most, page.locator(".span-row").count())
                dom_max[size] = most
                path = f"/t/{tenant.slug}/traces/{trace_run.number}"
                skeleton = [_get(port, path + "/skeleton/", cookie) for _ in range(12)][2:]
                search = [_get(port, path + "/search/?q=call-777", cookie) for _ in range(12)][2:]
                skeleton_stats[size] = summary([server / 1000 for _, _, server in skeleton])
                head = [_get(port, path + "/skeleton/?head=1", cookie) for _ in range(12)][2:]
                head_stats[size] = summary([server / 1000 for _, _, server in head])
                first_page = [_get(port, path + "/skeleton/?page=0", cookie) for _ in range(12)][2:]
                page_stats[size] = summary([server / 1000 for _, _, server in first_page])
                search_stats[size] = summary([server / 1000 for _, _, server in search])
                sizes[size] = skeleton[0][1]
            browser.close()
    finally:
        web.terminate()
        web.wait(10)

    live_kept, live_scratch = _live_reads(tenant, user, SIZES[-1])
    base = paints[SIZES[0]]
    rows = [Row(f"running trace read after a new step, {SIZES[-1]:,} spans, kept tree", live_kept, "from scratch",
                live_scratch, note="the live path: only the new spans read and rolled up (JSON left out)")]
    for size in SIZES:
        rows.append(Row(f"first rows painted, {size:,} spans", paints[size], f"paint@{SIZES[0]}", base,
                        note=f"≤ 1.5× at 50,000; max {dom_max[size]} rows in the DOM"))
    for size in SIZES:
        rows.append(Row(f"in-trace search (server), {size:,} spans", search_stats[size], f"skeleton@{size:,}",
                        skeleton_stats[size], note="target ≤ 2×"))
    for size in SIZES:
        rows.append(Row(f"skeleton head (server), {size:,} spans", head_stats[size], f"head@{SIZES[0]}",
                        head_stats[SIZES[0]], note="first 100 rows: what the page carries"))
    for size in SIZES:
        rows.append(Row(f"skeleton page 0 (server), {size:,} spans", page_stats[size], f"page@{SIZES[0]}",
                        page_stats[SIZES[0]], note="up to 5,000 rows: fetched after the first paint"))
    for size in SIZES:
        rows.append(Row(f"skeleton (server), {size:,} spans", skeleton_stats[size], f"skeleton@{SIZES[0]}",
                        skeleton_stats[SIZES[0]], note=f"{sizes[size]:,} bytes, {sizes[size] / size:.0f} B/span"))
    notes = (f"Chromium {CHROMIUM} (headless, 1400×900) against uvicorn with production settings; {NAVIGATIONS} "
             "navigations per size after two warm-ups; first paint = the `trace:first-rows` mark (navigation start → "
             "the animation frame after the first rows were placed: the page carries the skeleton's head, its first "
             "100 rows, so the first paint waits for no request; the rest is fetched after it in pages of 5,000 rows). An ended run's skeleton is materialized once (rollups "
             "final) and served from the cache while its span count stays the same; computing it cold took "
             + ", ".join(f"{size:,}: {ms:.0f} ms" for size, ms in cold.items()) + " in the bench process (done by a "
             "Celery task when the run's own span is stored, or by the first read). Server times are the views' own "
             "Server-Timing (span count + cache read, or the search query; JSON), 10 requests each; the search reads "
             "the spans' attributes every time (no cache). 2 cores, shared by the browser, the web process and Postgres. "
             "Max DOM rows over 21 scroll positions from top to bottom: "
             + ", ".join(f"{size:,}: {dom_max[size]}" for size in SIZES) + ". "
             "Span export's cost on P1's step is measured by `python -m bench p1ablation` (with span export over OTLP).")
    return table(rows) + "\n\n" + notes
