"""Price rules and repricing: new priced versions (the originals kept), rollups moved with them, an exact
diff per day and model; reconciliation with a provider's export, over 1% flagged."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from costs.models import LedgerEntry, PriceRule, Reconciliation, RepricingJob
from costs.repricing import repricing_run
from tests.costs.test_ledger import assert_rollups_equal_ledger


@pytest.fixture
def spent(cast, spend):
    return spend((2, cast.member), (3, cast.member))


def test_a_rate_card_reprices_a_range_keeping_the_originals_with_an_exact_diff(cast, client_for, spent):
    originals = {row.pk: row.amount_usd for row in LedgerEntry.objects.all()}
    admin = client_for(cast.admin)
    today = timezone.localdate()
    rule = admin.post(reverse("costs_pricing", args=["acme"]), {
        "form": "rule", "provider": "demo", "model": "demo-noop", "kind": "rate_card", "input_mtok": "1",
        "output_mtok": "2", "effective_from": (today - timedelta(days=1)).isoformat()})
    assert rule.status_code == 302
    job = RepricingJob.objects.create(tenant=cast.acme, first_day=today - timedelta(days=1), last_day=today + timedelta(days=1))
    job = repricing_run(job.pk)

    assert job.status == "done" and job.total == job.done == job.changed == len(originals)
    assert LedgerEntry.objects.filter(pk__in=originals, current=False).count() == len(originals)  # kept
    for pk, amount in originals.items():
        assert LedgerEntry.objects.get(pk=pk).amount_usd == amount
    new = list(LedgerEntry.objects.filter(current=True))
    assert len(new) == len(originals) and {row.price_version for row in new} == {2}
    for row in new:
        assert row.amount_usd == (Decimal(row.input_tokens) * 1 + Decimal(row.output_tokens) * 2) / 1_000_000
        assert row.price["source"] == "price rule" and not row.simulated
    diff = {(line["day"], line["model"]): line for line in job.diff}
    line = diff[(today.isoformat(), "demo:demo-noop")]
    assert Decimal(line["old_usd"]) == sum(originals.values())
    assert Decimal(line["new_usd"]) == sum(row.amount_usd for row in new)
    assert Decimal(line["difference_usd"]) == Decimal(line["new_usd"]) - Decimal(line["old_usd"])
    assert_rollups_equal_ledger()  # the rollups follow the current versions

    page = admin.get(reverse("costs_repricing", args=["acme", job.pk])).content.decode()
    assert 'id="repricing-progress"' in page and "demo:demo-noop" in page
    again = repricing_run(RepricingJob.objects.create(tenant=cast.acme, first_day=today, last_day=today).pk)
    assert again.changed == 0  # already at the rule's price



def test_memory_classifier_calls_are_repriced_like_model_calls(cast):
    from agents.hooks import StepInfo, Usage
    from costs.ledger import entry_for, ledger_write

    info = StepInfo(tenant_id=cast.acme.pk, run_id=1, agent_id=None, agent_version=1, requested_by_id=None, step=2,
                    goal="", trace_id="")
    listed = {"source": "genai-prices", "rates_per_mtok": {"input_mtok": "0.15", "output_mtok": "0.6"}}
    ledger_write([entry_for(info, Usage(kind="classifier", name="gpt-4o-mini", status="ok", provider="openai",
                                        input_tokens=1000, output_tokens=100, cost_usd=Decimal("0.00021"),
                                        price=listed, call_id="7"))])
    today = timezone.localdate()
    PriceRule.objects.create(tenant=cast.acme, provider="openai", model="gpt-4o-mini", kind="discount",
                             discount_percent=Decimal("50"), effective_from=today - timedelta(days=1))
    assert repricing_run(RepricingJob.objects.create(tenant=cast.acme, first_day=today, last_day=today).pk).changed == 1
    row = LedgerEntry.objects.get(current=True)
    assert (row.kind, row.source_key, row.price_version) == ("classifier", "classifier:1:7:1", 2)
    assert row.amount_usd == Decimal("0.000105")
    assert_rollups_equal_ledger()

def test_a_discount_and_the_admin_only_rules(cast, client_for, spent):
    today = timezone.localdate()
    finance = client_for(cast.finance)
    assert finance.get(reverse("costs_pricing", args=["acme"])).status_code == 200
    assert finance.post(reverse("costs_pricing", args=["acme"]), {"form": "rule"}).status_code == 403
    refused = client_for(cast.admin).post(reverse("costs_pricing", args=["acme"]), {
        "form": "rule", "provider": "demo", "model": "demo-noop", "kind": "discount", "discount_percent": "120",
        "effective_from": today.isoformat()})
    assert refused.status_code == 400 and b"less than 100" in refused.content
    PriceRule.objects.create(tenant=cast.acme, provider="demo", model="demo-noop", kind="discount",
                             discount_percent=Decimal("25"), effective_from=today)
    before = LedgerEntry.objects.aggregate(usd=Sum("amount_usd"))["usd"]
    repricing_run(RepricingJob.objects.create(tenant=cast.acme, first_day=today, last_day=today).pk)
    after = LedgerEntry.objects.filter(current=True).aggregate(usd=Sum("amount_usd"))["usd"]
    assert abs(after - before * Decimal("0.75")) < Decimal("0.0000000001") * LedgerEntry.objects.count()


def test_starting_a_repricing_from_the_page_runs_it_on_a_worker(cast, client_for, spent, start_worker):
    start_worker("reprice")
    today = timezone.localdate()
    PriceRule.objects.create(tenant=cast.acme, provider="demo", model="demo-noop", input_mtok=1, output_mtok=1,
                             effective_from=today)
    response = client_for(cast.admin).post(reverse("costs_pricing", args=["acme"]), {
        "form": "reprice", "first_day": today.isoformat(), "last_day": today.isoformat()})
    job = RepricingJob.objects.get()
    assert response["Location"] == reverse("costs_repricing", args=["acme", job.pk])
    from tests.conftest import wait_for

    wait_for(lambda: RepricingJob.objects.get().status == "done", 30, message="the repricing job")
    assert RepricingJob.objects.get().changed == LedgerEntry.objects.filter(current=True).count()


OPENAI_EXPORT = """start_time,end_time,line_item,project_id,amount_value,amount_currency
{day}T00:00:00Z,{next}T00:00:00Z,"gpt-4o-mini-2024-07-18, input",proj_1,{a}, usd
{day}T00:00:00Z,{next}T00:00:00Z,"gpt-4o-mini-2024-07-18, output",proj_1,{b},usd
{day}T00:00:00Z,{next}T00:00:00Z,"gpt-4o, input",proj_1,0.50,usd
"""


def test_reconciliation_flags_days_and_models_more_than_one_percent_apart(cast, client_for):
    from costs.ledger import Entry, ledger_write

    now = timezone.now()
    common = dict(tenant_id=cast.acme.pk, status="ok", user_id=None, run_id=None, step=1, attempt=1, agent_id=None,
                  agent_version=0, provider="openai", tool="", kind="model", input_tokens=1, cache_read_tokens=0,
                  cache_write_tokens=0, output_tokens=1, reasoning_tokens=0, priced=True, simulated=False,
                  cache_savings_usd=Decimal(0), price_source="genai-prices", price_source_version="x", rates={}, tier="",
                  price={})
    ledger_write([Entry(**common, at=now, source_key="t:1", model="gpt-4o-mini-2024-07-18", amount_usd=Decimal("1.00")),
                  Entry(**common, at=now, source_key="t:2", model="gpt-4o", amount_usd=Decimal("0.60"))])
    day = now.date()
    content = OPENAI_EXPORT.format(day=day, next=day + timedelta(days=1), a="0.600", b="0.395").encode()
    client = client_for(cast.finance)
    response = client.post(reverse("costs_reconciliation", args=["acme"]),
                           {"provider": "openai", "export": SimpleUploadedFile("costs.csv", content, "text/csv")})
    assert response.status_code == 302
    shown = Reconciliation.objects.get()
    lines = {line["model"]: line for line in shown.lines}
    assert lines["gpt-4o-mini"]["ours_usd"] == "1.0000" and lines["gpt-4o-mini"]["theirs_usd"] == "0.9950"
    assert not lines["gpt-4o-mini"]["flagged"]  # 0.5% apart
    assert lines["gpt-4o"]["flagged"] and lines["gpt-4o"]["difference_usd"] == "0.1000"  # 20% apart
    page = client.get(response["Location"]).content.decode()
    assert "1 of 2 day and model lines differ by more than 1%" in page
    bad = client.post(reverse("costs_reconciliation", args=["acme"]),
                      {"provider": "openai", "export": SimpleUploadedFile("x.csv", b"when,what\n1,2\n", "text/csv")})
    assert bad.status_code == 400 and b"The header needs" in bad.content


def test_a_second_repricing_over_overlapping_days_is_refused_while_the_first_runs(cast, client_for):
    today = timezone.localdate()
    running = RepricingJob.objects.create(tenant=cast.acme, first_day=today - timedelta(days=5), last_day=today,
                                          status="running")
    admin, url = client_for(cast.admin), reverse("costs_pricing", args=["acme"])

    overlapping = admin.post(url, {"form": "reprice", "first_day": (today - timedelta(days=1)).isoformat(),
                                   "last_day": (today + timedelta(days=2)).isoformat()})
    assert overlapping.status_code == 400
    assert f"Repricing job #{running.pk}".encode() in overlapping.content and b"still running" in overlapping.content
    assert RepricingJob.objects.count() == 1

    apart = admin.post(url, {"form": "reprice", "first_day": (today + timedelta(days=1)).isoformat(),
                             "last_day": (today + timedelta(days=3)).isoformat()})
    assert apart.status_code == 302  # days no running job covers
    RepricingJob.objects.filter(pk=running.pk).update(status="done")
    RepricingJob.objects.exclude(pk=running.pk).update(status="done")
    again = admin.post(url, {"form": "reprice", "first_day": (today - timedelta(days=1)).isoformat(),
                             "last_day": today.isoformat()})
    assert again.status_code == 302  # once the first finished


def _crashed_after_one_chunk(cast, monkeypatch, first_day, last_day):
    """A job whose worker committed one chunk (of two calls) and died: still "running", and its lease expired."""
    from costs import repricing

    monkeypatch.setattr(repricing, "CHUNK", 2)
    job = RepricingJob.objects.create(tenant=cast.acme, first_day=first_day, last_day=last_day)
    held = repricing.repricing_claim(job.pk)
    repricing._repricing_continue(held, max_chunks=1)
    RepricingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - RepricingJob.LEASE - timedelta(seconds=1))
    return held


def test_a_job_whose_worker_died_is_continued_from_its_last_chunk_by_starting_the_same_days(cast, client_for, spent,
                                                                                           monkeypatch):
    from costs.repricing import LeaseLost, _reprice_chunk

    today = timezone.localdate()
    originals = {row.source_key: row.amount_usd for row in LedgerEntry.objects.all()}
    assert len(originals) > 4  # more than two chunks
    PriceRule.objects.create(tenant=cast.acme, provider="demo", model="demo-noop", input_mtok=1, output_mtok=2,
                             effective_from=today - timedelta(days=1))
    admin, url = client_for(cast.admin), reverse("costs_pricing", args=["acme"])
    RepricingJob.objects.create(tenant=cast.acme, first_day=today, last_day=today, status="running",
                                heartbeat_at=timezone.now())  # alive: still refuses
    assert admin.post(url, {"form": "reprice", "first_day": today.isoformat(),
                            "last_day": today.isoformat()}).status_code == 400
    RepricingJob.objects.all().delete()

    dead = _crashed_after_one_chunk(cast, monkeypatch, today, today)
    crashed = RepricingJob.objects.get(pk=dead.pk)
    assert (crashed.status, crashed.done, crashed.changed, crashed.attempt) == ("running", 2, 2, 1)
    assert crashed.total == len(originals)
    assert_rollups_equal_ledger()  # each chunk is whole
    page = admin.get(reverse("costs_repricing", args=["acme", dead.pk])).content.decode()
    assert 'id="repricing-stalled"' in page

    resumed = admin.post(url, {"form": "reprice", "first_day": today.isoformat(), "last_day": today.isoformat()})
    assert resumed["Location"] == reverse("costs_repricing", args=["acme", dead.pk])  # the same job, continued
    assert RepricingJob.objects.count() == 1 and RepricingJob.objects.get().status == "queued"
    job = repricing_run(dead.pk)  # what the queued task does on a worker

    assert (job.status, job.attempt, job.total, job.done, job.changed) == ("done", 2, len(originals),
                                                                           len(originals), len(originals))
    versions = LedgerEntry.objects.order_by("source_key", "price_version")
    assert sorted((row.source_key, row.price_version, row.current) for row in versions) == sorted(
        [(key, 1, False) for key in originals] + [(key, 2, True) for key in originals])  # none priced twice
    assert_rollups_equal_ledger()
    (line,) = job.diff
    new = LedgerEntry.objects.filter(current=True).aggregate(usd=Sum("amount_usd"))["usd"]
    assert Decimal(line["old_usd"]) == sum(originals.values()) and Decimal(line["new_usd"]) == new
    assert Decimal(line["difference_usd"]) == new - sum(originals.values())

    # The dead attempt, come back to life, commits nothing: its claim was taken over.
    row = LedgerEntry.objects.filter(current=True).first()
    with pytest.raises(LeaseLost):
        _reprice_chunk(dead, [row], [], timezone.get_current_timezone(), {})
    assert LedgerEntry.objects.count() == 2 * len(originals) and RepricingJob.objects.get().done == len(originals)


def test_a_dead_job_over_other_days_is_marked_abandoned_and_blocks_nothing(cast, client_for, spent, monkeypatch):
    today = timezone.localdate()
    PriceRule.objects.create(tenant=cast.acme, provider="demo", model="demo-noop", input_mtok=1, output_mtok=2,
                             effective_from=today - timedelta(days=1))
    dead = _crashed_after_one_chunk(cast, monkeypatch, today - timedelta(days=1), today)
    response = client_for(cast.admin).post(reverse("costs_pricing", args=["acme"]), {
        "form": "reprice", "first_day": today.isoformat(), "last_day": (today + timedelta(days=1)).isoformat()})
    assert response.status_code == 302
    abandoned = RepricingJob.objects.get(pk=dead.pk)
    assert abandoned.status == "failed" and abandoned.error.startswith("Abandoned: its worker stopped at 2 of ")
    job = repricing_run(RepricingJob.objects.exclude(pk=dead.pk).get().pk)
    assert job.status == "done" and job.changed == LedgerEntry.objects.filter(current=True).count() - 2
    assert not LedgerEntry.objects.filter(price_version__gt=2).exists()
    assert_rollups_equal_ledger()


def test_two_takers_of_one_job_one_holds_it_until_its_lease_expires_then_only_the_other_commits(cast, spent,
                                                                                               monkeypatch):
    """Two workers given the same job (a task delivered twice): the second gets nothing while the first shows
    life; once the first has been silent for the lease, the second takes over (a higher attempt) and goes on
    from the last committed chunk, and the first, waking up, commits nothing more."""
    from costs import repricing

    today = timezone.localdate()
    PriceRule.objects.create(tenant=cast.acme, provider="demo", model="demo-noop", input_mtok=1, output_mtok=2,
                             effective_from=today - timedelta(days=1))
    monkeypatch.setattr(repricing, "CHUNK", 2)
    job = RepricingJob.objects.create(tenant=cast.acme, first_day=today, last_day=today)
    first = repricing.repricing_claim(job.pk)
    repricing._repricing_continue(first, max_chunks=1)
    assert repricing.repricing_claim(job.pk) is None  # alive: its chunk was its heartbeat
    RepricingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - RepricingJob.LEASE - timedelta(seconds=1))

    second = repricing.repricing_claim(job.pk)
    assert (second.attempt, second.done, second.after_id) == (first.attempt + 1, 2, RepricingJob.objects.get().after_id)
    assert repricing.repricing_claim(job.pk) is None  # a third taker: the second holds it now
    with pytest.raises(repricing.LeaseLost):
        repricing._repricing_continue(first)  # the first wakes up and tries its next chunk
    done = repricing._repricing_continue(second)
    assert (done.status, done.done, done.changed) == ("done", done.total, done.total)
    assert not LedgerEntry.objects.filter(price_version__gt=2).exists()
    assert_rollups_equal_ledger()


def test_the_sweep_continues_a_job_whose_worker_died_on_a_real_worker_without_anyone_starting_it(
        cast, client_for, spent, monkeypatch, start_worker):
    """Nobody comes back to the job page: beat's sweep queues the dead job again, a worker continues it from
    its last committed chunk, and it ends as if it had never stopped (nothing priced twice, rollups exact)."""
    from costs.services import repricing_resume_stalled
    from tests.conftest import wait_for

    today = timezone.localdate()
    originals = {row.source_key for row in LedgerEntry.objects.all()}
    PriceRule.objects.create(tenant=cast.acme, provider="demo", model="demo-noop", input_mtok=1, output_mtok=2,
                             effective_from=today)
    dead = _crashed_after_one_chunk(cast, monkeypatch, today, today)
    page = client_for(cast.admin).get(reverse("costs_repricing", args=["acme", dead.pk])).content.decode()
    assert "queued again within a minute" in page
    start_worker("reprice")

    assert repricing_resume_stalled() == 1
    assert repricing_resume_stalled() == 0  # queued again: not sent twice while it waits for a worker
    wait_for(lambda: RepricingJob.objects.get().status == "done", 30, message="the continued repricing job")
    job = RepricingJob.objects.get()
    assert (job.attempt, job.done, job.changed) == (2, len(originals), len(originals))
    assert sorted((row.source_key, row.price_version, row.current) for row in LedgerEntry.objects.all()) == sorted(
        [(key, 1, False) for key in originals] + [(key, 2, True) for key in originals])
    assert_rollups_equal_ledger()
    assert cast.acme.audit_events.filter(verb="costs.repricing_resumed", actor=None).count() == 1


def test_a_job_waiting_behind_busy_workers_says_it_is_waiting_not_that_its_worker_stopped(cast, client_for):
    today = timezone.localdate()
    admin = client_for(cast.admin)
    long_ago = timezone.now() - RepricingJob.LEASE - timedelta(minutes=1)
    waiting = RepricingJob.objects.create(tenant=cast.acme, first_day=today, last_day=today, done=40, total=100)
    RepricingJob.objects.filter(pk=waiting.pk).update(created_at=long_ago)  # queued, never taken
    page = admin.get(reverse("costs_repricing", args=["acme", waiting.pk])).content.decode()
    assert 'id="repricing-waiting"' in page and "to continue after call 40" in page
    assert 'id="repricing-stalled"' not in page

    just_queued = RepricingJob.objects.create(tenant=cast.acme, first_day=today, last_day=today)
    page = admin.get(reverse("costs_repricing", args=["acme", just_queued.pk])).content.decode()
    assert 'id="repricing-waiting"' not in page and 'id="repricing-stalled"' not in page

    RepricingJob.objects.filter(pk=waiting.pk).update(status="running", heartbeat_at=long_ago)  # taken, then died
    page = admin.get(reverse("costs_repricing", args=["acme", waiting.pk])).content.decode()
    assert 'id="repricing-stalled"' in page and 'id="repricing-waiting"' not in page
