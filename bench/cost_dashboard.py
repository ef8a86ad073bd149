"""P6a: the Costs dashboard over a large ledger, against B5 (hand-written SQL over the raw ledger rows).

Seeds one tenant ("p6-big") with its ledger rows (1M by default; ``python -m bench p6costs --rows 10000000``
for 10M) spread over 90 days (8 agents, 20 people, 4 models, 1 call in 997 unpriced) and 49 more tenants with
OTHER_ROWS each. Seeding is set-based: batches of up to a million rows made by generate_series, each inserted
and added to the hourly rollups in ONE statement (costs.ledger.rollup_upsert over the rows it inserted, as
the step's ledger write does); past a million rows the ledger's secondary indexes are dropped for the load and
built again after it (one sorted build is far cheaper than ten million index inserts).

- Ours: GET /t/p6-big/costs/?range=30d&group_by=agent over HTTP (uvicorn, production settings, a logged-in
  finance session): every panel (totals, groups with shares, the stacked series and its table, unit costs,
  alerts), read from the rollups.
- B5: the same numbers by hand-written SQL over the raw ledger rows of the 30 days, in this process (no
  HTTP, no template): totals, per agent, per day and agent, and the runs count.
- Export: GET /t/p6-big/costs/ledger.csv (every row, every snapshot column) for the 90 days, or at more than
  a million rows for the last days that hold about a million of them; streamed, the web process's RSS sampled
  every 50 ms.
- Write overhead: a step of the demo no-op looper in this process with the costs hooks (ledger + rollup
  write, budget gate with one budget) and without them, alternating blocks; p50 per step.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.request

from bench.agent_loop import _django, log_path
from bench.harness import Context, Row, measure, summary, table

OTHER_TENANTS, OTHER_ROWS = 49, 2_000
SAMPLES = int(os.environ.get("P6_SAMPLES", "60"))  # per measurement (fewer at 10M, where one B5 takes seconds)
BATCH = int(os.environ.get("P6_BATCH_ROWS", "1000000"))  # rows per seeding statement (smaller: to try the batching)
DAYS = 90


def ledger_rows() -> int:
    """The measured tenant's rows: ``--rows N`` (bench/__main__.py sets P6_LEDGER_ROWS), else a million."""
    return int(os.environ.get("P6_LEDGER_ROWS", "1000000"))

SEED = """
WITH written AS (INSERT INTO costs_ledger (tenant_id, at, source_key, price_version, current, kind, status, user_id, run_id, step,
  attempt, agent_id, agent_version, provider, model, tool, input_tokens, cache_read_tokens, cache_write_tokens,
  output_tokens, reasoning_tokens, amount_usd, priced, simulated, cache_savings_usd, price_source,
  price_source_version, rates, tier, price)
SELECT %(tenant)s, now() - (g %% (90 * 24 * 60)) * interval '1 minute', 'p6:' || %(tenant)s || ':' || g, 1, true,
  'model', 'ok', 1000 + g %% 20, NULL, 1, 1 + (g %% 50 = 0)::int, 1 + g %% 8, 1 + g %% 3, 'openai',
  (ARRAY['gpt-4o-mini', 'gpt-4o', 'o3-mini', 'gpt-4.1'])[1 + g %% 4], '', 500 + g %% 3000, (g %% 5) * 100, 0,
  50 + g %% 700, 0,
  CASE WHEN g %% 997 = 0 THEN NULL ELSE ((500 + g %% 3000) * 0.15 + (50 + g %% 700) * 0.6) / 1000000 END,
  g %% 997 <> 0, false, 0, 'genai-prices', '0.2.3', '{"input_mtok": "0.15", "output_mtok": "0.6"}', 'base', '{}'
FROM generate_series(%(first)s, %(last)s) AS g
RETURNING *)
"""

B5_QUERIES = [
    """SELECT sum(amount_usd), count(*), count(*) FILTER (WHERE NOT priced), sum(input_tokens), sum(output_tokens),
              sum(cache_savings_usd), sum(amount_usd) FILTER (WHERE attempt > 1)
         FROM costs_ledger WHERE tenant_id = %s AND current AND at >= %s AND at < %s""",
    """SELECT agent_id, sum(amount_usd), count(*), count(*) FILTER (WHERE NOT priced), sum(input_tokens + output_tokens)
         FROM costs_ledger WHERE tenant_id = %s AND current AND at >= %s AND at < %s GROUP BY agent_id""",
    """SELECT date_trunc('day', at, 'UTC'), agent_id, sum(amount_usd)
         FROM costs_ledger WHERE tenant_id = %s AND current AND at >= %s AND at < %s GROUP BY 1, 2""",
    """SELECT count(*), count(*) FILTER (WHERE status = 'completed') FROM agents_run
         WHERE tenant_id = %s AND created_at >= %s AND created_at < %s""",
]


def _seed():
    from django.contrib.auth import get_user_model
    from django.db import connection

    from console.models import Membership, Role, Tenant
    from costs.models import LedgerEntry

    rows = ledger_rows()
    big, _ = Tenant.objects.get_or_create(slug="p6-big", defaults={"name": "P6 big"})
    finance, _ = get_user_model().objects.get_or_create(username="p6-finance")
    Membership.objects.get_or_create(user=finance, tenant=big, defaults={"role": Role.FINANCE})
    if LedgerEntry.objects.filter(tenant=big).count() == rows:
        return big, finance
    others = [Tenant.objects.get_or_create(slug=f"p6-t{i:02d}", defaults={"name": f"P6 {i}"})[0]
              for i in range(OTHER_TENANTS)]
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM costs_ledger WHERE source_key LIKE 'p6:%%'")
        cursor.execute("DELETE FROM costs_hourly WHERE tenant_id = ANY(%s)", [[big.pk, *(t.pk for t in others)]])
        rebuild = _drop_secondary_indexes(cursor) if rows > BATCH else []
        cursor.execute("SET work_mem = '256MB'")
        for first in range(1, rows + 1, BATCH):
            _seed_batch(cursor, big.pk, first, min(rows, first + BATCH - 1))
            print(f"  {min(rows, first + BATCH - 1):,} of {rows:,} rows ({time.monotonic() - started:.0f} s)", flush=True)
        for tenant in others:
            _seed_batch(cursor, tenant.pk, 1, OTHER_ROWS)
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute("RESET work_mem")
        cursor.execute("ANALYZE costs_ledger")
        cursor.execute("ANALYZE costs_hourly")
    print(f"  seeded {rows + OTHER_TENANTS * OTHER_ROWS:,} ledger rows in {time.monotonic() - started:.0f} s",
          flush=True)
    return big, finance


def _seed_batch(cursor, tenant_id: int, first: int, last: int) -> None:
    """Ledger rows ``first``..``last`` of the tenant and their rollups, in one statement (its own transaction)."""
    from costs.ledger import rollup_upsert

    cursor.execute(SEED + rollup_upsert("SELECT *, 1 AS sign FROM written"),
                   {"tenant": tenant_id, "first": first, "last": last})


def _drop_secondary_indexes(cursor) -> list[str]:
    """Drop the ledger's indexes and unique constraints but its primary key; returns the statements that make
    them again, as they were."""
    cursor.execute("""SELECT conname, 'ALTER TABLE costs_ledger ADD CONSTRAINT ' || quote_ident(conname) || ' '
                             || pg_get_constraintdef(oid)
                        FROM pg_constraint WHERE conrelid = 'costs_ledger'::regclass AND contype = 'u'""")
    constraints = cursor.fetchall()
    cursor.execute("""SELECT i.indexname, i.indexdef FROM pg_indexes i
                       WHERE i.tablename = 'costs_ledger' AND i.indexname NOT IN (
                         SELECT conname FROM pg_constraint WHERE conrelid = 'costs_ledger'::regclass)""")
    indexes = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE costs_ledger DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in (*constraints, *indexes)]


def _b5(tenant_id: int, start, end):
    from django.db import connection

    def sample():
        with connection.cursor() as cursor:
            for sql in B5_QUERIES:
                cursor.execute(sql, [tenant_id, start, end])
                cursor.fetchall()
    return sample


def _rss_while(pid: int, work) -> tuple[float, object]:
    import psutil

    process, peak, done = psutil.Process(pid), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = work()
    finally:
        done.set()
        watcher.join()
    return peak[0] / 2**20, result


def _write_overhead() -> tuple[object, object, object]:
    """p50 of a looper step without the costs hooks, with them (ledger + rollup; no budget) and with them and
    a budget (the gate's and the thresholds' reads too), in alternating blocks."""
    from django.conf import settings

    from agents.hooks import hooks
    from agents.models import Agent
    from agents.services import run_advance, run_start
    from console.models import Tenant, tenant_config_changed
    from costs.budgets import budget_gate
    from costs.ledger import usage_to_ledger
    from costs.models import Budget

    settings.RUN_TURN_SECONDS = 0
    tenant, _ = Tenant.objects.get_or_create(slug="p6-writes", defaults={"name": "P6 writes"})
    agent, _ = Agent.objects.get_or_create(tenant=tenant, slug="looper", defaults={
        "name": "Looper", "instructions": "Call noop.", "model": "demo:noop", "tools": ["noop"], "plan_mode": False,
        "max_steps": 1000, "max_tokens": 10**9, "max_cost_usd": 99_999})
    samples = {"without": [], "ledger": [], "budget": []}

    def block(kind):
        Budget.objects.filter(tenant=tenant).delete()
        if kind == "budget":
            Budget.objects.create(tenant=tenant, name="Monthly", limit_usd=10**6, thresholds=[100])
        tenant_config_changed(tenant)
        if kind == "without":
            hooks.usage.remove(usage_to_ledger)
            hooks.gates.remove(budget_gate)
        try:
            run = run_start(tenant=tenant, agent=agent, goal="Call noop 40 times", requested_by=None)
            for _ in range(40):
                t0 = time.perf_counter()
                run_advance(run_id=run.pk, worker="p6")
                samples[kind].append(time.perf_counter() - t0)
        finally:
            if kind == "without":
                hooks.usage.append(usage_to_ledger)
                hooks.gates.append(budget_gate)

    for kind in samples:  # warm-up
        block(kind)
    for values in samples.values():
        values.clear()
    for _ in range(5):
        for kind in samples:
            block(kind)
    return summary(samples["without"]), summary(samples["ledger"]), summary(samples["budget"])


def run(ctx: Context) -> str:
    _django(ctx)
    from datetime import timedelta

    from django.utils import timezone

    from bench.click_to_resume import _session, _web

    tenant, finance = _seed()
    now = timezone.now()
    local_midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = local_midnight - timedelta(days=29), local_midnight + timedelta(days=1)
    b5 = summary(measure(_b5(tenant.pk, start, end), SAMPLES, warmup=3))

    proc, port = _web(ctx, log_path("bench-p6-web.log"))
    try:
        opener = urllib.request.build_opener()
        opener.addheaders = [("Cookie", f"sessionid={_session(finance)}")]
        base = f"http://127.0.0.1:{port}/t/{tenant.slug}/costs/"

        def page():
            with opener.open(base + "?range=30d&group_by=agent") as response:
                body = response.read()
            if response.status != 200 or b'id="cost-total"' not in body:
                raise RuntimeError(f"the dashboard answered {response.status}")
        ours = summary(measure(page, SAMPLES, warmup=3))

        # At most about a million rows exported: the days that hold them (all 90 at a million rows).
        export_days = max(1, min(DAYS, DAYS * 1_000_000 // ledger_rows()))
        first = (now - timedelta(days=export_days)).date().isoformat()

        def export():
            lines, started = 0, time.perf_counter()
            with opener.open(base + f"ledger.csv?range=custom&from={first}&to={now.date().isoformat()}") as response:
                for _ in response:
                    lines += 1
            return lines - 1, time.perf_counter() - started
        if os.environ.get("P6_SKIP_EXPORT"):  # a 10M run after the 1M one measured the export already
            rss_mb, exported, export_seconds = 0.0, 0, 0.0
        else:
            rss_mb, (exported, export_seconds) = _rss_while(proc.pid, export)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    without, ledger_only, with_budget = _write_overhead()
    rows = [
        Row(f"Dashboard, 30 days, by agent, over HTTP ({ledger_rows():,}-row tenant)", ours, "B5", b5,
            note="target p99 ≤ 1× B5" if ledger_rows() <= 1_000_000 else "target p99 ≤ 0.2× B5"),
        Row("B5: the same totals by SQL over the raw ledger rows", b5, "B5", b5),
        Row("Looper step with the ledger + rollup write (no budget)", ledger_only, "without", without,
            note="target p50 ≤ 1.05×"),
        Row("Looper step with the ledger and one budget (gate + thresholds)", with_budget, "without", without),
        Row("Looper step without the costs hooks", without, "without", without),
    ]
    notes = (f"Ledger: {ledger_rows():,} rows in the measured tenant over 90 days and {OTHER_TENANTS} tenants × "
             f"{OTHER_ROWS:,} more. Dashboard p99 {ours.p99_ms:.1f} ms vs B5 p99 {b5.p99_ms:.1f} ms (B5 has no HTTP or "
             f"template cost; ours reads the hourly rollups, so it does not grow with the ledger). "
             + ("Ledger CSV export: not run (P6_SKIP_EXPORT). " if not exported else
                f"Ledger CSV export: {exported:,} rows ({export_days} days) streamed in {export_seconds:.1f} s, the web "
                f"process's peak RSS {rss_mb:.0f} MB (target < 250 MB). ")
             + f"{SAMPLES} samples per dashboard measurement. Write overhead: p50 {ledger_only.p50_ms:.2f} ms with the ledger + rollup write, "
             f"{with_budget.p50_ms:.2f} ms with a budget too, {without.p50_ms:.2f} ms without the costs hooks, measured "
             f"on the in-process looper step (demo no-op model and tool, priced in every variant), not on the P1 "
             f"harness itself; 2 cores shared with other work, so the ratios move by several percent between runs. "
             f"`python -m bench p6costs --rows 10000000` runs the 10M-row variant (its own section in RESULTS.md).")
    return table(rows) + "\n\n" + notes
