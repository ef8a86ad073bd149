"""The demo with a real Celery worker and a classifier model configured (faked at its HTTP boundary): the
pipeline task asks the model about the champion the agent proposed while the run's own steps go on in the
same worker, and the run's cost, on its page, in the run list and in the API, is the costs drill-down's total
to the cent: the steps' calls and the classifier's. With a stopping budget used up, the model is never asked and
the run page says which budget kept it from being asked."""

import json
import re
from decimal import Decimal

from django.urls import reverse

from agents.models import Agent, RunEvent, RunStatus
from agents.services import run_start
from costs.models import Budget, LedgerEntry
from costs.services import budget_save
from memory.models import MemoryProposal
from memory.seed import seed_demo_memories
from memory.services import proposal_create
from tests.agents.test_gateway_http import Canned, completion, provider  # noqa: F401  (the fake provider fixture)
from tests.conftest import wait_for
from tests.factories import RENEWAL_GOAL


def _worker(start_worker, fake, **env):
    return start_worker(env={"MEMORY_CLASSIFIER_MODEL": "openai:gpt-4o-mini", "OPENAI_BASE_URL": fake.url,
                             "OPENAI_API_KEY": "test-key", "DEMO_PRICED_AS": "openai:gpt-4o-mini", **env})


def _run_until_its_proposal_is_told(cast, agent):
    run = run_start(tenant=cast.acme, agent=agent, goal=RENEWAL_GOAL, requested_by=cast.member)

    def settled():
        run.refresh_from_db()
        return run.status in (RunStatus.WAITING_FOR_HUMAN, RunStatus.FAILED, RunStatus.COMPLETED) and \
            RunEvent.objects.filter(run=run, type="memory.proposal").exists()

    wait_for(settled, 60, message="the run to wait and its proposal to be told")
    return run


def _money(html: str, before: str) -> str:
    return re.search(re.escape(before) + r"\s*(\$[\d,.]+)", html).group(1)


def test_the_run_costs_the_same_everywhere_with_the_classifiers_call(cast, renewals, start_worker, provider,  # noqa: F811
                                                                     client_for):
    seed_demo_memories(cast.acme)
    body = completion(text=json.dumps({"action": "add", "record": None, "why": "A new fact."}),
                      prompt_tokens=2_000_000, completion_tokens=40)
    provider.queue(Canned(body={**body, "model": "gpt-4o-mini"}))
    worker = _worker(start_worker, provider)
    try:
        run = _run_until_its_proposal_is_told(cast, Agent.objects.get(tenant=cast.acme, slug="renewals-memory"))
        assert run.status == RunStatus.WAITING_FOR_HUMAN, run.terminal_reason
        assert len(provider.requests) == 1
        assert "the classifier model: A new fact." in MemoryProposal.objects.get(run=run).reason
    except AssertionError:
        print(worker.output()[-6000:])
        raise
    ledger = LedgerEntry.objects.filter(run_id=run.pk, current=True)
    assert {row.kind for row in ledger} == {"model", "classifier"}
    total = sum(row.amount_usd for row in ledger)
    assert total > Decimal("0.30")  # the classifier's 2M prompt tokens at $0.15 per million
    run.refresh_from_db()
    assert run.cost_usd.quantize(Decimal("0.01")) == total.quantize(Decimal("0.01"))
    run_page = client_for(cast.member).get(reverse("run_detail", args=["acme", run.number])).content.decode()
    drill_down = client_for(cast.finance).get(reverse("costs_run", args=["acme", run.number])).content.decode()
    assert _money(run_page, "<dt>Cost</dt><dd>") == _money(drill_down, "Total")
    assert "memory classifier at step" in run_page


def test_a_used_up_stop_budget_keeps_the_model_unasked_in_the_worker(cast, renewals, start_worker, provider,  # noqa: F811
                                                                     client_for):
    budget_save(tenant=cast.acme, actor=cast.finance, budget=Budget(name="Acme cap", limit_usd=Decimal("0.000001"),
                                                                    action="stop"))
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    worker = _worker(start_worker, provider)
    try:  # the proposal's task, enqueued after commit as the memory.remember tool does, runs in the worker
        proposal = proposal_create(tenant=cast.acme, run=run, step=1, call_id="call_1", scope="tenant", type="fact",
                                   content="The champion at ACME-042 is Dana (VP Ops).",
                                   subject="champion of ACME-042", confidence=0.8)
        wait_for(lambda: RunEvent.objects.filter(run=run, type="memory.proposal").exists(), 60,
                 message="the proposal decided and told to the run")
    except AssertionError:
        print(worker.output()[-6000:])
        raise
    proposal.refresh_from_db()
    assert provider.requests == []  # no request reached the model
    assert proposal.outcome == "stored" and proposal.classifier_not_asked == "budget_exhausted: Acme cap"
    assert not LedgerEntry.objects.filter(run_id=run.pk, kind="classifier").exists()
    page = client_for(cast.member).get(reverse("run_detail", args=["acme", run.number])).content.decode()
    assert "the classifier model was not asked: budget_exhausted: Acme cap" in page
