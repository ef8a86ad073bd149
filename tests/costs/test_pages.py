"""The Costs pages as finance uses them: totals, groupings, drill-downs, CSV that equals the page to
the cent, the ledger export, budgets; bad input is refused in words; other tenants' runs are not found."""

import csv
import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from costs.models import Budget, LedgerEntry


@pytest.fixture
def spent(cast, spend):
    return spend((1, cast.member), (3, cast.admin), (2, cast.member))


def page_amount(html: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}">\$([0-9.,]+)<', html).group(1)


def rows_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.mark.parametrize("grouping", ["agent", "model", "user", "tool", "agent_version", "provider", "kind"])
def test_every_grouping_shows_the_spend_and_its_csv_totals_equal_the_page(cast, client_for, spent, grouping):
    client = client_for(cast.finance)
    url = reverse("costs", args=["acme"])
    page = client.get(url, {"range": "today", "group_by": grouping})
    assert page.status_code == 200
    html = page.content.decode()
    total = page_amount(html, "cost-total")
    ledger_total = sum(e.amount_usd for e in LedgerEntry.objects.all())
    assert Decimal(total) == ledger_total.quantize(Decimal("0.0001")) > 0
    assert "Simulated prices" in html and "(simulated)" in html
    groups = rows_of(client.get(url, {"range": "today", "group_by": grouping, "export": "groups"}))
    assert groups[-1][0] == "Total" and groups[-1][1] == total
    assert groups[-1][-1] == "simulated"
    series = rows_of(client.get(url, {"range": "today", "group_by": grouping, "export": "series"}))
    assert series[-1][0] == "Total" and series[-1][-1] == total


def test_users_are_named_and_drill_down_reaches_a_runs_calls(cast, client_for, spent):
    client = client_for(cast.finance)
    html = client.get(reverse("costs", args=["acme"]), {"range": "7d", "group_by": "user"}).content.decode()
    assert ">max<" in html and ">ada<" in html
    runs = client.get(reverse("costs_runs", args=["acme"]), {"range": "7d", "group_by": "user", "value": cast.member.pk})
    body = runs.content.decode()
    assert f"#{spent[0].number}<" in body and f"#{spent[2].number}<" in body and f"#{spent[1].number}<" not in body
    calls = client.get(reverse("costs_run", args=["acme", spent[1].number])).content.decode()
    assert calls.count("simulated</span> as openai:gpt-4o-mini") == 4
    assert "input_mtok $0.15" in calls


def test_the_runs_page_is_paged_by_keyset(cast, client_for, spent):
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from costs.forms import window_from
    from costs.selectors import runs_page

    window, _ = window_from({"range": "7d"}, ZoneInfo("UTC"), timezone.now())
    first, cursor = runs_page(cast.acme, window, None, None, size=2)
    second, end = runs_page(cast.acme, window, None, None, before=cursor, size=2)
    assert [r["run_id"] for r in first + second] == sorted((r.pk for r in spent), reverse=True) and end is None


def test_the_ledger_export_streams_every_row_with_its_snapshot(cast, client_for, spent):
    response = client_for(cast.admin).get(reverse("costs_ledger_csv", args=["acme"]), {"range": "today"})
    rows = rows_of(response)
    header, body = rows[0], rows[1:]
    assert len(body) == LedgerEntry.objects.count() == 9
    for column in ("price_source", "price_source_version", "rates", "tier", "price", "simulated", "cache_read_tokens"):
        assert column in header
    assert sum(Decimal(r[header.index("amount_usd")]) for r in body) == sum(e.amount_usd for e in LedgerEntry.objects.all())
    assert {r[header.index("simulated")] for r in body} == {"simulated"}


@pytest.mark.parametrize("query", [{"range": "forever"}, {"group_by": "colour"}, {"range": "custom", "from": "yesterday"},
                                   {"range": "custom", "from": "2026-02-01", "to": "2026-01-01"}])
def test_a_bad_range_or_grouping_is_refused_in_words(cast, client_for, query):
    response = client_for(cast.finance).get(reverse("costs", args=["acme"]), query)
    assert response.status_code == 400 and b"class=\"error\"" in response.content


def test_another_tenants_run_is_not_found(cast, client_for, spent):
    from console.models import Role
    from tests.factories import make_user

    globex_finance = make_user("gina", {cast.globex: Role.FINANCE})
    assert client_for(globex_finance).get(reverse("costs_run", args=["globex", spent[0].number])).status_code == 404
    assert client_for(cast.member).get(reverse("costs_run", args=["acme", spent[0].number])).status_code == 403
    assert client_for(cast.outsider).get(reverse("costs_run", args=["acme", spent[0].number])).status_code == 404


def test_finance_creates_changes_and_deletes_a_budget(cast, client_for):
    client = client_for(cast.finance)
    url = reverse("costs_budgets", args=["acme"])
    refused = client.post(url, {"name": "No limit", "scope": "tenant", "period": "month", "thresholds": "50",
                                "action": "stop"})
    assert refused.status_code == 400 and b"Give a limit" in refused.content
    created = client.post(url, {"name": "Monthly", "scope": "tenant", "period": "month", "limit_usd": "25",
                                "thresholds": "80, 50, 100", "action": "stop"})
    assert created.status_code == 302
    budget = Budget.objects.get(name="Monthly")
    assert budget.thresholds == [50, 80, 100] and budget.created_by == cast.finance
    client.post(reverse("costs_budget", args=["acme", budget.pk]), {
        "name": "Monthly", "scope": "tenant", "period": "month", "limit_usd": "30", "thresholds": "90",
        "action": "alert"})
    budget.refresh_from_db()
    assert budget.limit_usd == Decimal("30") and budget.action == "alert"
    assert client_for(cast.member).post(reverse("costs_budget_delete", args=["acme", budget.pk])).status_code == 403
    assert client_for(cast.outsider).post(reverse("costs_budget_delete", args=["acme", budget.pk])).status_code == 404
    assert client.post(reverse("costs_budget_delete", args=["acme", budget.pk])).status_code == 302
    assert not Budget.objects.exists()


def test_a_csv_is_safe_to_open_in_a_spreadsheet_and_keeps_its_numbers(cast, client_for, spend):
    """A name someone chose that starts a formula is written as text; amounts (negative ones too) stay numbers."""
    from agents.models import Agent

    [run] = spend((1, cast.member))
    Agent.objects.filter(pk=run.agent_id).update(name="=HYPERLINK(evil)")
    url = reverse("costs", args=["acme"])
    rows = rows_of(client_for(cast.finance).get(url, {"range": "today", "group_by": "agent", "export": "groups"}))
    assert rows[1][0] == "'=HYPERLINK(evil)" and rows[1][1] == rows[-1][1] and not rows[1][1].startswith("'")


def test_csv_cells_that_start_a_formula_are_quoted_and_numbers_are_not():
    from console.exports import csv_safe

    assert [csv_safe(v) for v in ("=1+1", "+x", "-x", "@sum", "-0.0100", "-12", "1e5", "Total", 3)] == \
        ["'=1+1", "'+x", "'-x", "'@sum", "-0.0100", "-12", "1e5", "Total", 3]


def test_the_dashboard_says_when_its_days_are_approximate_in_a_zone_of_half_hours(cast, client_for):
    from costs.services import cost_timezone_set

    finance = client_for(cast.finance)
    cost_timezone_set(tenant=cast.acme, actor=cast.admin, zone="Asia/Tokyo")
    assert b'id="days-approximate"' not in finance.get("/t/acme/costs/").content
    cost_timezone_set(tenant=cast.acme, actor=cast.admin, zone="Asia/Kolkata")
    page = finance.get("/t/acme/costs/?range=30d").content.decode()
    assert 'id="days-approximate"' in page and "Asia/Kolkata is not a whole number of hours from UTC" in page
