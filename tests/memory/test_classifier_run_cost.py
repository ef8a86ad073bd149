"""What the memory classifier spends for a run is part of the run's cost: the run page, run list and API show
the same total as the costs drill-down, and a step committing while a classifier call is charged loses neither's
spend (both write the run's totals holding its row lock, the step's each transaction reading them afresh)."""

import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from agents.gateway import Attempt, Tokens, price
from agents.models import Run, RunEvent
from agents.services import run_locked, run_start, run_usage_record
from agents.services.usage import run_charge
from console.services import api_token_create
from costs.models import LedgerEntry
from memory.models import ProposalOutcome
from tests.agents.test_gateway_http import Canned, completion, provider  # noqa: F401  (the fake provider fixture)
from tests.conftest import behind_a_lock
from tests.factories import advance
from tests.memory.test_classifier import KEPT, PARAPHRASE, kept  # noqa: F401  (the kept record fixture)


@pytest.fixture
def priced_classifier(settings, provider):  # noqa: F811
    settings.MEMORY_CLASSIFIER_MODEL = "openai:gpt-4o-mini"
    return provider


def _answer(fake, *, prompt_tokens, **answer):
    body = completion(text=json.dumps(answer), prompt_tokens=prompt_tokens, completion_tokens=40)
    fake.queue(Canned(body={**body, "model": "gpt-4o-mini"}))


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


def _money(html: str, before: str) -> str:
    return re.search(re.escape(before) + r"\s*(\$[\d,.]+)", html).group(1)


def test_the_run_page_shows_the_costs_drill_downs_total_with_the_classifiers_spend(
        cast, max_run, propose, kept, priced_classifier, client_for, client):  # noqa: F811
    run = advance(max_run)  # the demo agent's steps, priced as a real model
    steps_cost = run.cost_usd
    assert steps_cost > 0
    _answer(priced_classifier, prompt_tokens=1_200_000, action="merge", record=kept.pk, why="Same.")
    _answer(priced_classifier, prompt_tokens=3_400_000, action="add", record=None, why="A new fact.")
    assert propose(run, PARAPHRASE, subject="Globex invoicing").outcome == ProposalOutcome.MERGED
    assert propose(run, "Globex pays by wire.", subject="Globex payment", step=2).outcome == ProposalOutcome.STORED

    classifier_spend = sum(price("openai", "gpt-4o-mini", Tokens(input=tokens, output=40))[0]
                           for tokens in (1_200_000, 3_400_000))
    ledger = LedgerEntry.objects.filter(run_id=run.pk, current=True)
    assert sum(row.amount_usd for row in ledger.filter(kind="classifier")) == classifier_spend
    run.refresh_from_db()
    # the run keeps its total at six decimals, each call added as it is charged; the ledger keeps each call exact
    assert abs(run.cost_usd - (steps_cost + classifier_spend)) <= Decimal("0.0000005") * ledger.count()
    ledger_total = sum(row.amount_usd for row in ledger)
    assert _cents(run.cost_usd) == _cents(ledger_total) == _cents(steps_cost + classifier_spend) > 0
    assert run.input_tokens + run.output_tokens == sum(row.input_tokens + row.output_tokens for row in ledger)

    run_page = client_for(cast.member).get(reverse("run_detail", args=["acme", run.number])).content.decode()
    drill_down = client_for(cast.finance).get(reverse("costs_run", args=["acme", run.number])).content.decode()
    runs_list = client_for(cast.member).get(reverse("runs", args=["acme"])).content.decode()
    assert _money(run_page, "<dt>Cost</dt><dd>") == _money(drill_down, "Total") == f"${run.cost_usd:,.4f}"
    assert run.cost_usd > steps_cost  # not the steps' alone
    assert f"${run.cost_usd:,.4f}" in runs_list
    assert "memory classifier at step 1: openai:gpt-4o-mini answered" in run_page  # where the spend came from
    token = api_token_create(tenant=cast.acme, name="finance", actor=cast.admin).secret
    api = client.get(f"/api/v1/runs/{run.number}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert Decimal(str(api.json()["cost_usd"])) == run.cost_usd


def _classifier_attempt() -> Attempt:
    amount, snapshot = price("openai", "gpt-4o-mini", Tokens(input=1200, output=40))
    return Attempt(provider="openai", model="gpt-4o-mini", status="ok", input_tokens=1200, output_tokens=40,
                   cost_usd=amount, price=snapshot)


@pytest.mark.django_db(transaction=True)
def test_a_step_committing_while_a_classifier_call_is_charged_loses_neither(cast, renewals):
    run = run_start(tenant=cast.acme, agent=renewals, goal="Prepare the renewal for ACME-042", requested_by=cast.member)
    stale = Run.objects.get(pk=run.pk)  # the classifier's copy, read before either committed
    step_attempt = Attempt(provider="demo", model="planner", status="ok", input_tokens=500, output_tokens=100,
                           cost_usd=Decimal("0.250000"))
    def classifier_charge():
        run_usage_record(run=stale, step=1, attempts=[_classifier_attempt()], kind="classifier",
                         call_id="proposal-1:asked", label="memory classifier")
        return "done"

    with run_locked(tenant=cast.acme, run_id=run.pk) as locked:  # a step's transaction, the row locked
        run_charge(locked, step_attempt)
        charged = behind_a_lock(classifier_charge, message="the classifier's charge to wait for the step's lock")
    assert charged() == "done"

    run.refresh_from_db()
    classifier_amount = _classifier_attempt().cost_usd
    assert run.cost_usd == Decimal("0.25") + classifier_amount
    assert (run.input_tokens, run.output_tokens) == (1700, 140)
    assert LedgerEntry.objects.get(run_id=run.pk, kind="classifier").amount_usd == classifier_amount
    assert RunEvent.objects.filter(run=run, type="usage.charged").count() == 1
