"""The costs API: the summary equals the page, the ledger streams as CSV, budgets CRUD; finance and
admins only (403 for other roles), another tenant's budgets are 404; bad input is a 4xx with a message."""

import csv
import io
from decimal import Decimal

import pytest

from console.services import api_token_create
from costs.models import Budget, LedgerEntry
from tests.factories import make_looper


@pytest.fixture
def api(cast, client):
    tokens = {user: api_token_create(tenant=tenant, name=user.username, actor=user).secret
              for user, tenant in ((cast.finance, cast.acme), (cast.member, cast.acme), (cast.admin, cast.acme),
                                   (cast.both, cast.globex))}

    def call(method, path, as_user=cast.finance, **kwargs):
        return getattr(client, method)("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {tokens[as_user]}",
                                       content_type="application/json", **kwargs)
    return call


@pytest.fixture
def spent(cast, spend):
    return spend((1, cast.member), (2, cast.member))


def test_the_summary_totals_and_groups_equal_the_ledger(cast, api, spent):
    body = api("get", "/costs/summary?group_by=model&range=today").json()
    ledger = sum(e.amount_usd for e in LedgerEntry.objects.all())
    assert Decimal(body["total_usd"]) == ledger.quantize(Decimal("0.0001")) > 0
    assert body["calls"] == 5 and body["unpriced_calls"] == 0 and body["simulated"] is True
    assert [g["label"] for g in body["groups"]] == ["demo-noop"] and body["groups"][0]["share_percent"] == 100.0
    custom = api("get", "/costs/summary", data={"from": body["from"], "to": body["to"], "group_by": "user"}).json()
    assert custom["total_usd"] == body["total_usd"] and custom["groups"][0]["label"] == "max"


def test_the_export_streams_the_ledger(cast, api, spent):
    response = api("get", "/costs/export.csv?range=7d")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1 + LedgerEntry.objects.count()


def test_budgets_are_created_read_changed_and_deleted(cast, api):
    created = api("post", "/costs/budgets", data={"name": "Looper", "scope": "agent", "agent": "nope",
                                                   "limit_usd": "5"})
    assert created.status_code == 422 and "No agent" in created.json()["message"]
    make_looper(cast.acme)
    created = api("post", "/costs/budgets", data={"name": "Looper", "scope": "agent", "agent": "looper",
                                                   "limit_usd": "5", "thresholds": [80, 50]})
    assert created.status_code == 201, created.json()
    budget = created.json()
    assert budget["agent"] == "looper" and budget["thresholds"] == [50, 80] and budget["action"] == "stop"
    changed = api("put", f"/costs/budgets/{budget['id']}", data={"name": "Looper", "scope": "agent", "agent": "looper",
                                                                 "limit_tokens": 1000, "action": "alert"})
    assert changed.json()["limit_tokens"] == 1000 and changed.json()["limit_usd"] is None
    assert [b["name"] for b in api("get", "/costs/budgets").json()] == ["Looper"]
    assert api("delete", f"/costs/budgets/{budget['id']}").status_code == 204
    assert not Budget.objects.exists()


def test_roles_and_tenants(cast, api):
    budget = Budget.objects.create(tenant=cast.acme, name="Acme", limit_usd=5, thresholds=[100])
    for path in ("/costs/summary", "/costs/export.csv", "/costs/budgets", f"/costs/budgets/{budget.pk}"):
        response = api("get", path, as_user=cast.member)
        assert response.status_code == 403 and response.json()["code"] == "forbidden", path
    assert api("get", f"/costs/budgets/{budget.pk}", as_user=cast.both).status_code == 404  # a Globex token
    assert api("delete", f"/costs/budgets/{budget.pk}", as_user=cast.both).status_code == 404
    changed = api("put", f"/costs/budgets/{budget.pk}", as_user=cast.both, data={"name": "Globex's", "limit_usd": "1"})
    assert changed.status_code == 404 and changed.json()["code"] == "not_found"
    assert api("get", "/costs/budgets", as_user=cast.both).json() == []
    for method, path in (("post", "/costs/budgets"), ("put", f"/costs/budgets/{budget.pk}"),
                         ("delete", f"/costs/budgets/{budget.pk}")):
        refused = api(method, path, as_user=cast.member, data={"name": "X", "limit_usd": "1"})
        assert refused.status_code == 403, (method, path)
    assert Budget.objects.get().name == "Acme"
    assert api("get", "/costs/summary", as_user=cast.admin).status_code == 200


@pytest.mark.parametrize("query", ["group_by=colour", "range=forever", "from=yesterday", "from=2026-02-01&to=2026-01-01"])
def test_bad_input_is_a_4xx_with_a_message(api, query):
    response = api("get", f"/costs/summary?{query}")
    assert response.status_code in (400, 422) and response.json()["message"]


def test_price_rules_are_read_by_finance_and_changed_by_admins(cast, api):
    rule = {"provider": "openai", "model": "gpt-4o-mini", "kind": "rate_card", "input_mtok": "0.1",
            "output_mtok": "0.5", "effective_from": "2026-11-01"}
    assert api("post", "/costs/price-rules", data=rule).status_code == 403  # finance reads only
    refused = api("post", "/costs/price-rules", as_user=cast.admin, data={**rule, "output_mtok": None})
    assert refused.status_code == 422 and "input and output" in refused.json()["message"]
    created = api("post", "/costs/price-rules", as_user=cast.admin, data=rule)
    assert created.status_code == 201 and created.json()["input_mtok"] == "0.1"
    rule_id = created.json()["id"]
    assert [r["id"] for r in api("get", "/costs/price-rules").json()] == [rule_id]
    changed = api("put", f"/costs/price-rules/{rule_id}", as_user=cast.admin,
                  data={**rule, "kind": "discount", "discount_percent": "10"})
    assert changed.json()["kind"] == "discount"
    for method in ("put", "delete"):  # finance and members: their role does not open admin
        for who in (cast.finance, cast.member):
            refused = api(method, f"/costs/price-rules/{rule_id}", as_user=who, data=rule)
            assert refused.status_code == 403 and refused.json()["code"] in ("forbidden", "missing_scope"), (method, who)
    assert api("get", "/costs/price-rules", as_user=cast.member).status_code == 403  # members read no prices
    assert api("get", "/costs/price-rules", as_user=cast.both).json() == []  # a Globex token: Globex's rules
    assert api("put", f"/costs/price-rules/{rule_id}", as_user=cast.both, data=rule).status_code == 404
    assert api("delete", f"/costs/price-rules/{rule_id}", as_user=cast.both).status_code == 404
    assert api("get", "/costs/price-rules").json()[0]["kind"] == "discount"  # neither changed it
    assert api("delete", f"/costs/price-rules/{rule_id}", as_user=cast.admin).status_code == 204
