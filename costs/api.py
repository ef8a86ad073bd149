"""Costs over the API: the summary by a grouping, the ledger as streamed CSV, budgets. A token acts as
the person who made it, with their current role (finance or admin)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from django import forms
from django.contrib.auth import get_user_model
from django.http import Http404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from agents.models import Agent
from console.api_auth import token_scopes
from console.api_errors import ApiError, errors
from console.exports import csv_response
from costs import exports
from costs.budgets import tenant_zone
from costs.forms import RangeRefused, budget_problems, price_rule_problems, thresholds_from, window_from
from costs.models import Budget, PriceRule
from costs.selectors import dashboard, ledger_export, rounded
from costs.services import budget_delete, budget_save, price_rule_delete, price_rule_save

# Reading costs needs costs:read; changing budgets (configuration) needs admin (console/api_auth.py); the
# maker's role must open costs (finance, admin), or for price rule changes the admin section.
router = Router(tags=["costs"], auth=token_scopes(read="costs:read", write="admin", section="costs"))
ADMINS_ONLY = token_scopes("admin", section="admin")
Grouping = Literal["agent", "model", "user", "tool", "agent_version", "provider", "kind"]
Range = Literal["today", "7d", "30d", "mtd", "custom"]


def _person(request):
    """The token's maker, whose role the operation's auth checked (the router's: section costs; price rule
    changes: section admin) and kept as request.membership: the one access check, made before the operation."""
    return request.membership.user


def _window(request, query: dict):
    try:
        return window_from({k: v for k, v in query.items() if v}, tenant_zone(request.tenant.pk), timezone.now())
    except RangeRefused as error:
        raise ApiError(400, str(error)) from None


class GroupOut(Schema):
    key: str = Field(description="The group's value (an id for agent and user, 'agent_id:version' for agent_version)")
    label: str
    amount_usd: Decimal = Field(description="Rounded to four decimals, as the console shows it")
    share_percent: float
    calls: int
    unpriced_calls: int
    input_tokens: int
    output_tokens: int
    simulated_calls: int


class SummaryOut(Schema):
    group_by: str
    range: str
    from_date: str = Field(alias="from")
    to_date: str = Field(alias="to", description="The last day included")
    timezone: str
    total_usd: Decimal
    calls: int
    unpriced_calls: int = Field(description="Calls whose model has no known price: counted here, never as $0")
    simulated: bool = Field(description="Some spend is the demo model's simulated price")
    cache_savings_usd: Decimal
    retry_amount_usd: Decimal
    groups: list[GroupOut]


@router.get("/costs/summary", response={200: SummaryOut, **errors(403)}, by_alias=True,
            summary="Spend in a range, in total and by a grouping (read from the hourly rollups)")
def summary(request, group_by: Grouping = "agent", range: Range | None = None,  # noqa: A002 (the query's name)
            from_date: str = Query("", alias="from"), to_date: str = Query("", alias="to")):
    """``range`` (today, 7d, 30d, mtd) or ``from``/``to`` dates (YYYY-MM-DD, both included), in the tenant's timezone."""
    window, chosen = _window(request, {"range": range, "from": from_date, "to": to_date, "group_by": group_by})
    board = dashboard(request.tenant, window, group_by)
    totals = board["totals"]
    return {"group_by": group_by, "range": chosen["range"], "from": chosen["from"], "to": chosen["to"],
            "timezone": window.zone.key, "total_usd": board["total_usd"], "calls": totals["calls"],
            "unpriced_calls": totals["unpriced_calls"], "simulated": board["simulated"],
            "cache_savings_usd": rounded(totals["cache_savings_usd"]), "retry_amount_usd": rounded(totals["retry_amount_usd"]),
            "groups": [{"key": row["value"], "label": row["label"], "amount_usd": row["amount"],
                        "share_percent": round(row["share"], 2), "calls": row["calls"],
                        "unpriced_calls": row["unpriced_calls"], "input_tokens": row["input_tokens"],
                        "output_tokens": row["output_tokens"], "simulated_calls": row["simulated_calls"]}
                       for row in board["groups"]]}


@router.get("/costs/export.csv", response=errors(403),
            summary="The ledger of a range as CSV (streamed): every call with every price snapshot column",
            openapi_extra={"responses": {200: {"description": "CSV, a header line then a line per ledger row",
                                               "content": {"text/csv": {"schema": {"type": "string"}}}}}})
def export_csv(request, range: Range | None = None,  # noqa: A002
               from_date: str = Query("", alias="from"), to_date: str = Query("", alias="to")):
    window, chosen = _window(request, {"range": range, "from": from_date, "to": to_date})
    return csv_response(request, f"cost-ledger-{chosen['from']}-{chosen['to']}.csv",
                                exports.ledger_rows(ledger_export(request.tenant, window)))


class BudgetIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scope: Literal["tenant", "agent", "user", "run"] = "tenant"
    agent: str | None = Field(default=None, description="The agent's slug (scope agent)")
    user: str | None = Field(default=None, description="The person's username (scope user)")
    period: Literal["month", "day"] = "month"
    limit_usd: Decimal | None = Field(default=None, max_digits=14, decimal_places=4)
    limit_tokens: int | None = None
    thresholds: list[int] = Field(default=[50, 80, 100], description="Percents of the limit that alert, once per period")
    action: Literal["stop", "ask", "alert"] = Field("stop", description="At 100%: stop runs before their next model "
                                                        "call, ask a person to continue (an approval of kind budget), "
                                                        "or alert only")
    extension_usd: Decimal | None = Field(default=None, max_digits=14, decimal_places=4,
                                          description="With ask: the extension asked, USD (default 20% of the limit)")
    extension_tokens: int | None = Field(default=None, description="With ask: the extension asked, tokens")


class BudgetOut(Schema):
    id: int
    name: str
    scope: str
    agent: str | None
    user: str | None
    period: str
    limit_usd: Decimal | None
    limit_tokens: int | None
    thresholds: list[int]
    action: str
    extension_usd: Decimal | None
    extension_tokens: int | None
    created_at: datetime

    @staticmethod
    def resolve_agent(budget) -> str | None:
        return budget.agent.slug if budget.agent else None

    @staticmethod
    def resolve_user(budget) -> str | None:
        return budget.user.username if budget.user else None


def _budget(request, budget_id: int) -> Budget:
    budget = Budget.objects.for_tenant(request.tenant).select_related("agent", "user").filter(pk=budget_id).first()
    if budget is None:
        raise Http404
    return budget


def _filled(request, budget: Budget, body: BudgetIn) -> Budget:
    agent = user = None
    if body.agent:
        agent = Agent.objects.for_tenant(request.tenant).filter(slug=body.agent).first()
        if agent is None:
            raise ApiError(422, f"No agent '{body.agent[:60]}' in this tenant.")
    if body.user:
        user = get_user_model().objects.filter(username=body.user, memberships__tenant=request.tenant).first()
        if user is None:
            raise ApiError(422, f"No member '{body.user[:60]}' in this tenant.")
    try:
        thresholds = thresholds_from(body.thresholds)
    except forms.ValidationError as error:
        raise ApiError(422, error.messages[0]) from None
    data = {**body.dict(), "agent": agent, "user": user}
    if problems := budget_problems(data):
        raise ApiError(422, " ".join(problem for _, problem in problems))
    for name in ("name", "scope", "period", "limit_usd", "limit_tokens", "action", "extension_usd", "extension_tokens"):
        setattr(budget, name, data[name])
    budget.agent, budget.user, budget.thresholds = agent, user, thresholds
    return budget


@router.get("/costs/budgets", response={200: list[BudgetOut], **errors(403)}, summary="The tenant's budgets")
def list_budgets(request):
    return list(Budget.objects.for_tenant(request.tenant).select_related("agent", "user"))


@router.post("/costs/budgets", response={201: BudgetOut, **errors(403)}, summary="Add a budget")
def create_budget(request, body: BudgetIn):
    person = _person(request)
    return Status(201, budget_save(tenant=request.tenant, actor=person, budget=_filled(request, Budget(), body)))


@router.get("/costs/budgets/{budget_id}", response={200: BudgetOut, **errors(403, 404)})
def get_budget(request, budget_id: int):
    budget = _budget(request, budget_id)
    return budget


@router.put("/costs/budgets/{budget_id}", response={200: BudgetOut, **errors(403, 404)}, summary="Change a budget")
def change_budget(request, budget_id: int, body: BudgetIn):
    budget = _budget(request, budget_id)
    person = _person(request)
    return budget_save(tenant=request.tenant, actor=person, budget=_filled(request, budget, body))


@router.delete("/costs/budgets/{budget_id}", response={204: None, **errors(403, 404)}, summary="Delete a budget")
def remove_budget(request, budget_id: int):
    budget = _budget(request, budget_id)
    person = _person(request)
    budget_delete(tenant=request.tenant, actor=person, budget=budget)
    return Status(204, None)


class PriceRuleIn(Schema):
    provider: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=200)
    kind: Literal["rate_card", "discount"] = "rate_card"
    input_mtok: Decimal | None = Field(default=None, max_digits=14, decimal_places=6)
    output_mtok: Decimal | None = Field(default=None, max_digits=14, decimal_places=6)
    cache_read_mtok: Decimal | None = Field(default=None, max_digits=14, decimal_places=6)
    cache_write_mtok: Decimal | None = Field(default=None, max_digits=14, decimal_places=6)
    discount_percent: Decimal | None = Field(default=None, max_digits=6, decimal_places=3)
    effective_from: date


class PriceRuleOut(PriceRuleIn):
    id: int
    created_at: datetime


def _rule(request, rule_id: int) -> PriceRule:
    rule = PriceRule.objects.for_tenant(request.tenant).filter(pk=rule_id).first()
    if rule is None:
        raise Http404
    return rule


def _rule_filled(rule: PriceRule, body: PriceRuleIn) -> PriceRule:
    data = body.dict()
    if problems := price_rule_problems(data):
        raise ApiError(422, " ".join(problem for _, problem in problems))
    for name, value in data.items():
        setattr(rule, name, value)
    return rule


@router.get("/costs/price-rules", response={200: list[PriceRuleOut], **errors(403)}, summary="The tenant's price rules")
def list_price_rules(request):
    return list(PriceRule.objects.for_tenant(request.tenant))


@router.post("/costs/price-rules", response={201: PriceRuleOut, **errors(403)}, auth=ADMINS_ONLY,
             summary="Add a price rule (admins); reprice a range in the console to apply it")
def create_price_rule(request, body: PriceRuleIn):
    person = _person(request)
    return Status(201, price_rule_save(tenant=request.tenant, actor=person, rule=_rule_filled(PriceRule(), body)))


@router.put("/costs/price-rules/{rule_id}", response={200: PriceRuleOut, **errors(403, 404)}, auth=ADMINS_ONLY,
            summary="Change a price rule")
def change_price_rule(request, rule_id: int, body: PriceRuleIn):
    rule = _rule(request, rule_id)
    person = _person(request)
    return price_rule_save(tenant=request.tenant, actor=person, rule=_rule_filled(rule, body))


@router.delete("/costs/price-rules/{rule_id}", response={204: None, **errors(403, 404)}, auth=ADMINS_ONLY,
               summary="Delete a price rule")
def remove_price_rule(request, rule_id: int):
    rule = _rule(request, rule_id)
    person = _person(request)
    price_rule_delete(tenant=request.tenant, actor=person, rule=rule)
    return Status(204, None)
