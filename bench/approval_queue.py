"""P6 (approvals part): the reviewer queue page with 10,000 pending requests in the tenant.

Django's test client renders /t/<tenant>/approvals/ in this process against the bench Postgres
(real middleware, session, tenancy check, selectors, templates; no socket), with 10,000 pending
requests of one tenant plus 10,000 of another tenant (which the page must not read). One
sample = one full page render, default sort (risk) and a filtered one (tool + min risk). The
ratio is to Bh (a minimal Django view committing one row over HTTP) from the same run.
"""

from __future__ import annotations

import random

from bench.agent_loop import _django
from bench.harness import Context, Row, measure, summary, table

PENDING = 10_000


def _seed(tenant_slug: str, n: int):
    from django.contrib.auth import get_user_model

    from agents.models import Agent, Run
    from approvals.models import ApprovalRequest
    from console.models import Membership, Role, Tenant

    tenant, _ = Tenant.objects.get_or_create(slug=tenant_slug, defaults={"name": tenant_slug.title()})
    reviewer, _ = get_user_model().objects.get_or_create(username=f"{tenant_slug}-reviewer")
    Membership.objects.get_or_create(user=reviewer, tenant=tenant, defaults={"role": Role.REVIEWER})
    if ApprovalRequest.objects.filter(tenant=tenant).count() >= n:
        return tenant, reviewer
    agent, _ = Agent.objects.get_or_create(tenant=tenant, slug="queue-bench", defaults={
        "name": "Queue bench", "instructions": "-", "model": "demo:noop", "tools": ["email.send"]})
    last = Run.objects.for_tenant(tenant).order_by("-number").values_list("number", flat=True).first() or 0
    runs = Run.objects.bulk_create(Run(tenant=tenant, number=last + 1 + i, agent=agent, agent_version=1, goal=f"goal {i}",
                                       status="waiting_for_human") for i in range(n // 10))
    rng = random.Random(7)
    tools = ["email.send", "calendar.book", "billing.create_invoice"]
    ApprovalRequest.objects.bulk_create(
        ApprovalRequest(tenant=tenant, run=runs[i % len(runs)], step=i, call_id=f"call_{i}", tool=tools[i % 3],
                        arguments={"to": f"person{i}@example.com", "subject": "Renewal", "body": "x" * 200},
                        reason="Send the renewal plan", risk=rng.choice([3, 3, 4]), policy="risk ≥ 3: one approval")
        for i in range(n))
    return tenant, reviewer


def run(ctx: Context) -> str:
    _django(ctx)
    from django.conf import settings
    from django.test import Client, override_settings

    # No collectstatic here: plain static storage instead of the manifest one production uses.
    override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"], STORAGES={
        **settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
    print(f"  seeding {PENDING:,} pending requests in each of two tenants ...", flush=True)
    tenant, reviewer = _seed("queue-bench", PENDING)
    _seed("queue-other", PENDING)
    client = Client()
    client.force_login(reviewer)
    url = f"/t/{tenant.slug}/approvals/"

    def page(query=""):
        def get():
            response = client.get(url + query)
            if response.status_code != 200 or b"queue-item-" not in response.content:
                raise RuntimeError(f"the queue page answered {response.status_code}")
        return get

    bh = ctx.baseline("Bh")
    default = summary(measure(page(), 200, warmup=10))
    filtered = summary(measure(page("?tool=billing.create_invoice&min_risk=4&sort=due"), 200, warmup=10))
    rows = [
        Row("Queue page, 10k pending, sort by risk", default, "Bh", bh, note="target p99 ≤ 200 ms"),
        Row("Queue page, 10k pending, tool + risk filter, by due", filtered, "Bh", bh),
        Row("Bh (same run)", bh, "Bh", bh),
    ]
    notes = (f"{PENDING:,} pending requests in the tenant and {PENDING:,} in another; the page shows the first 50 of "
             f"the sorted, filtered queue with the first request's detail pane (run, plan, recent events), and the "
             f"navigation badge's open count. Rendered by Django's test client in the bench process (no HTTP socket). "
             f"p99 in ms is the number the target names: default sort {default.p99_ms:.1f} ms, filtered "
             f"{filtered.p99_ms:.1f} ms.")
    return table(rows) + "\n\n" + notes
