"""The write pipeline with a classifier model configured: the model (faked at its HTTP boundary, speaking the
OpenAI chat-completions API) decides add / merge / supersede / ignore; an answer that is not usable, or no model
configured, leaves the decision to the offline rules. Each call the model is asked is a ledger row of kind
"classifier" on the run's account, priced as a step's call is."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from agents.gateway import Tokens, price
from approvals.models import ApprovalRequest
from console.models import AuditEvent
from costs.models import Budget, BudgetAlert, LedgerEntry
from costs.selectors import rollup_totals
from costs.services import budget_save
from memory import services
from memory.models import MemoryRecord, ProposalOutcome
from memory.tasks import process_proposal
from tests.costs.test_ledger import assert_rollups_equal_ledger
from tests.agents.test_gateway_http import Canned, completion, provider  # noqa: F401  (the fake provider fixture)

KEPT = "Invoices for Globex go out on the first business day of the month."
PARAPHRASE = "Globex is invoiced on the first working day of each month."


@pytest.fixture
def kept(cast):
    return services.memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact", content=KEPT,
                                  subject="Globex invoicing")


@pytest.fixture
def classifier(settings, provider):  # noqa: F811
    settings.MEMORY_CLASSIFIER_MODEL = "openai-compatible:fake-model"
    return provider


def _answer(fake, **answer):
    fake.queue(Canned(body=completion(text=json.dumps(answer))))


def test_a_paraphrase_the_model_calls_the_same_is_merged(cast, max_run, propose, kept, classifier):
    _answer(classifier, action="merge", record=kept.pk, why="Same invoicing day, other words.")
    processed = propose(max_run, PARAPHRASE, subject="Globex invoicing")
    assert processed.outcome == ProposalOutcome.MERGED and processed.record_id == kept.pk
    assert "the classifier model: Same invoicing day, other words." in processed.reason
    assert MemoryRecord.objects.filter(tenant=cast.acme).count() == 1
    asked = json.dumps(classifier.bodies[0])
    assert PARAPHRASE in asked and KEPT in asked and f"record {kept.pk}" in asked


def test_a_changed_fact_the_model_calls_a_supersede_replaces_the_old_record(cast, max_run, propose, kept, classifier):
    _answer(classifier, action="supersede", record=kept.pk, why="The day changed.")
    processed = propose(max_run, "Invoices for Globex now go out on the 15th.", subject="Globex invoicing")
    assert processed.outcome == ProposalOutcome.SUPERSEDED and processed.other_id == kept.pk
    kept.refresh_from_db()
    assert kept.status == "superseded" and kept.superseded_by_id == processed.record_id


def test_a_supersede_of_a_record_waiting_for_a_person_leaves_it_to_the_rules(cast, max_run, propose, classifier):
    waiting = services.memory_create(tenant=cast.acme, actor=None, scope="tenant", type="fact", content=KEPT,
                                     subject="Globex invoicing", status="proposed")
    _answer(classifier, action="supersede", record=waiting.pk, why="The day changed.")
    processed = propose(max_run, "Invoices for Globex now go out on the 15th.", subject="Globex invoicing")
    assert processed.outcome == ProposalOutcome.STORED and "classifier model" not in processed.reason
    waiting.refresh_from_db()
    assert waiting.status == "proposed"


def test_what_the_model_calls_not_worth_keeping_is_refused_with_its_reason(cast, max_run, propose, classifier):
    _answer(classifier, action="ignore", record=None, why="Small talk, not a fact about the customer.")
    processed = propose(max_run, "The user said hello.")
    assert processed.outcome == ProposalOutcome.REFUSED and processed.record_id is None
    assert processed.reason == "not worth remembering; the classifier model: Small talk, not a fact about the customer."


@pytest.mark.parametrize("reply", ["I would merge these two.", '{"action": "merge", "record": 999999}',
                                   '{"action": "forget"}'])
def test_an_answer_that_is_not_usable_leaves_it_to_the_rules(cast, max_run, propose, kept, classifier, reply):
    classifier.queue(Canned(body=completion(text=reply)))
    processed = propose(max_run, KEPT, subject="Globex invoicing")  # the rules: the same words, a merge
    assert processed.outcome == ProposalOutcome.MERGED and processed.record_id == kept.pk
    assert "classifier model" not in processed.reason


def test_a_provider_that_fails_leaves_it_to_the_rules(cast, max_run, propose, kept, classifier):
    classifier.otherwise = Canned(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
    processed = propose(max_run, "Invoices for Globex go out on the 15th.", subject="Globex invoicing")
    assert processed.outcome == ProposalOutcome.SUPERSEDED and processed.other_id == kept.pk


def test_offline_no_model_is_asked(cast, max_run, propose, kept, provider):  # noqa: F811
    processed = propose(max_run, KEPT, subject="Globex invoicing")
    assert processed.outcome == ProposalOutcome.MERGED and provider.requests == []


# --- What the classifier's calls cost: a ledger row of their own, on the run's account -------------------------

@pytest.fixture
def priced_classifier(settings, provider):  # noqa: F811
    """A classifier at a real model's list price (the fake provider answers as gpt-4o-mini)."""
    settings.MEMORY_CLASSIFIER_MODEL = "openai:gpt-4o-mini"
    return provider


def _priced_answer(fake, *, prompt_tokens=1200, completion_tokens=40, **answer):
    body = completion(text=json.dumps(answer), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    fake.queue(Canned(body={**body, "model": "gpt-4o-mini"}))


def _classifier_rows():
    return list(LedgerEntry.objects.filter(kind="classifier").order_by("id"))


def test_each_classifier_call_is_a_ledger_row_attributed_to_the_run_and_priced_at_list(cast, max_run, propose, kept,
                                                                                      priced_classifier):
    _priced_answer(priced_classifier, action="merge", record=kept.pk, why="Same invoicing day, other words.")
    processed = propose(max_run, PARAPHRASE, subject="Globex invoicing", step=3)
    assert processed.outcome == ProposalOutcome.MERGED
    [row] = _classifier_rows()
    assert (row.tenant_id, row.user_id, row.run_id, row.agent_id, row.agent_version, row.step, row.attempt) == (
        cast.acme.pk, cast.member.pk, max_run.pk, max_run.agent_id, max_run.agent_version, 3, 1)
    assert (row.provider, row.model, row.status) == ("openai", "gpt-4o-mini", "ok")
    assert row.source_key.startswith(f"classifier:{max_run.pk}:{processed.pk}:") and row.source_key.endswith(":1")
    assert (row.input_tokens, row.output_tokens) == (1200, 40)
    amount, snapshot = price("openai", "gpt-4o-mini", Tokens(input=1200, output=40))
    assert row.priced and not row.simulated and row.amount_usd == amount == (
        Decimal(1200) * Decimal("0.15") + Decimal(40) * Decimal("0.6")) / 1_000_000
    assert row.price_source == "genai-prices" and row.rates == snapshot["rates_per_mtok"]
    assert_rollups_equal_ledger()
    assert rollup_totals(cast.acme)["amount_usd"] == amount


def test_an_unpriced_classifier_model_is_flagged_never_a_silent_zero(cast, max_run, propose, kept, classifier):
    _answer(classifier, action="merge", record=kept.pk, why="Same.")
    propose(max_run, PARAPHRASE, subject="Globex invoicing")
    [row] = _classifier_rows()
    assert not row.priced and row.amount_usd is None and row.price["unpriced"] and row.input_tokens == 11
    assert rollup_totals(cast.acme)["unpriced_calls"] == 1
    assert_rollups_equal_ledger()


def test_a_call_whose_answer_is_not_usable_still_costs_and_a_failed_one_does_not(cast, max_run, propose, kept,
                                                                                 classifier):
    classifier.queue(Canned(body=completion(text="I would merge these two.")))
    propose(max_run, KEPT, subject="Globex invoicing")
    assert len(_classifier_rows()) == 1
    classifier.otherwise = Canned(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
    propose(max_run, "Invoices for Globex go out on the 15th.", subject="Globex invoicing")
    assert len(_classifier_rows()) == 1  # a refused request used no tokens: nothing priced, as for a step


def test_a_proposal_task_taken_again_after_a_crash_records_each_paid_call_once(cast, max_run, kept, priced_classifier, monkeypatch,
                                                    django_capture_on_commit_callbacks):
    proposal = services.proposal_create(tenant=cast.acme, run=max_run, step=1, call_id="call_1", scope="tenant",
                                        type="fact", content=PARAPHRASE, subject="Globex invoicing", confidence=0.7)
    for _ in range(2):
        _priced_answer(priced_classifier, action="merge", record=kept.pk, why="Same.")
    decide = services._proposal_decide

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(services, "_proposal_decide", crash)
    with pytest.raises(RuntimeError):  # the model answered and was paid for; the worker died before deciding
        process_proposal(proposal.pk)
    monkeypatch.setattr(services, "_proposal_decide", decide)
    with django_capture_on_commit_callbacks(execute=True):
        assert process_proposal(proposal.pk) == ProposalOutcome.MERGED  # the redelivery asks again
        assert process_proposal(proposal.pk) == ProposalOutcome.MERGED  # and once more: processed, nothing asked
    assert len(priced_classifier.requests) == 2  # two calls paid for: two rows, neither written twice
    keys = [row.source_key for row in _classifier_rows()]
    assert len(keys) == len(set(keys)) == 2
    assert all(key.startswith(f"classifier:{max_run.pk}:{proposal.pk}:") and key.endswith(":1") for key in keys)
    assert_rollups_equal_ledger()


def test_classifier_spend_counts_toward_budgets(cast, max_run, propose, kept, priced_classifier):
    watched = budget_save(tenant=cast.acme, actor=cast.finance, budget=Budget(
        name="Acme memory", limit_tokens=1000, action="alert", thresholds=[50, 100]))
    _priced_answer(priced_classifier, action="merge", record=kept.pk, why="Same.")
    propose(max_run, PARAPHRASE, subject="Globex invoicing")
    assert sorted(BudgetAlert.objects.filter(budget=watched).values_list("threshold", flat=True)) == [50, 100]


def test_finance_sees_classifier_spend_as_its_own_kind(cast, max_run, propose, kept, priced_classifier, client_for):
    _priced_answer(priced_classifier, action="merge", record=kept.pk, why="Same.")
    propose(max_run, PARAPHRASE, subject="Globex invoicing")
    client = client_for(cast.finance)
    board = client.get(reverse("costs", args=["acme"]), {"range": "today", "group_by": "kind"}).content.decode()
    assert "Memory classifier call" in board
    groups = _csv(client.get(reverse("costs", args=["acme"]), {"range": "today", "group_by": "kind",
                                                               "export": "groups"}))
    assert groups[1][:2] == ["Memory classifier call", "0.0002"] and groups[-1][:2] == ["Total", "0.0002"]
    ledger = _csv(client.get(reverse("costs_ledger_csv", args=["acme"]), {"range": "today"}))
    assert [row[ledger[0].index("kind")] for row in ledger[1:]] == ["classifier"]
    runs = client.get(reverse("costs_runs", args=["acme"]),
                      {"range": "today", "group_by": "kind", "value": "classifier"}).content.decode()
    assert f"#{max_run.number}<" in runs
    calls = client.get(reverse("costs_run", args=["acme", max_run.number])).content.decode()
    assert "memory classifier · openai:gpt-4o-mini" in calls


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- Budgets are asked before the classifier's call, as before a step's --------------------------------------

@pytest.fixture
def small_calls(settings):
    """Calls asking for at most 20 output tokens: the budgets' estimate of the next call is small and known."""
    settings.MODEL_MAX_OUTPUT_TOKENS = 20


def _budget(cast, **fields):
    return budget_save(tenant=cast.acme, actor=cast.finance, budget=Budget(**fields))


def test_a_used_up_stop_budget_keeps_the_model_unasked_and_the_rules_decide(cast, max_run, propose, kept, small_calls,
                                                                            priced_classifier, client_for):
    _budget(cast, name="Per run cap", scope="run", limit_tokens=1000, action="stop")
    _priced_answer(priced_classifier, action="merge", record=kept.pk, why="Same invoicing day, other words.")
    first = propose(max_run, PARAPHRASE, subject="Globex invoicing")  # within the budget: the model is asked
    assert first.outcome == ProposalOutcome.MERGED and first.classifier_not_asked == ""
    assert len(priced_classifier.requests) == 1  # and paid 1240 tokens of the run's 1000

    second = propose(max_run, KEPT, subject="Globex invoicing", step=2)
    assert len(priced_classifier.requests) == 1  # no request reached the model
    assert second.outcome == ProposalOutcome.MERGED and second.record_id == kept.pk  # the rules: the same words
    assert second.classifier_not_asked == "budget_exhausted: Per run cap"
    assert second.reason.endswith(
        "the classifier model was not asked (budget_exhausted: Per run cap); the rules decided")
    audit = AuditEvent.objects.filter(tenant=cast.acme, verb="memory.proposal_merged").order_by("id").last()
    assert audit.data["classifier_not_asked"] == "budget_exhausted: Per run cap"
    assert len(_classifier_rows()) == 1  # nothing was spent on the unasked call

    page = client_for(cast.member).get(reverse("run_detail", args=["acme", max_run.number])).content.decode()
    assert "the classifier model was not asked: budget_exhausted: Per run cap" in page


def test_a_proposal_the_rules_store_says_the_classifier_was_not_asked(cast, max_run, propose, small_calls,
                                                                      priced_classifier, client_for):
    _budget(cast, name="Acme monthly", limit_usd=Decimal("0.000001"), action="stop")
    stored = propose(max_run, "Globex's fiscal year starts in April.", subject="Globex fiscal year")
    assert priced_classifier.requests == []
    assert stored.outcome == ProposalOutcome.STORED
    assert stored.reason == "the classifier model was not asked (budget_exhausted: Acme monthly); the rules decided"
    panel = client_for(cast.member).get(reverse("run_memories", args=["acme", max_run.number])).content.decode()
    assert "the classifier model was not asked (budget_exhausted: Acme monthly); the rules decided" in panel


def test_an_ask_to_continue_budget_stops_the_classifier_and_asks_nobody(cast, max_run, propose, kept, small_calls,
                                                                        priced_classifier):
    _budget(cast, name="Ask finance", limit_usd=Decimal("0.000001"), action="ask")
    processed = propose(max_run, KEPT, subject="Globex invoicing")
    assert priced_classifier.requests == []
    assert processed.outcome == ProposalOutcome.MERGED
    assert processed.classifier_not_asked == "budget_exhausted: Ask finance"
    assert not ApprovalRequest.objects.filter(tenant=cast.acme).exists()  # no budget request was opened
    max_run.refresh_from_db()
    assert max_run.status == "queued"  # the run is as it was: its own next step asks the budget


def test_an_alert_only_budget_does_not_stop_the_classifier(cast, max_run, propose, kept, small_calls,
                                                           priced_classifier):
    _budget(cast, name="Watch only", limit_usd=Decimal("0.000001"), action="alert")
    _priced_answer(priced_classifier, action="merge", record=kept.pk, why="Same.")
    processed = propose(max_run, PARAPHRASE, subject="Globex invoicing")
    assert len(priced_classifier.requests) == 1 and processed.classifier_not_asked == ""
    assert "the classifier model: Same." in processed.reason


def test_with_budget_left_the_classifier_is_asked_as_before(cast, max_run, propose, kept, small_calls,
                                                            priced_classifier):
    _budget(cast, name="Acme monthly", limit_usd=Decimal("100"), action="stop")
    _budget(cast, name="Per agent", scope="agent", agent=max_run.agent, limit_tokens=100_000, action="ask")
    _priced_answer(priced_classifier, action="merge", record=kept.pk, why="Same.")
    processed = propose(max_run, PARAPHRASE, subject="Globex invoicing")
    assert len(priced_classifier.requests) == 1 and processed.classifier_not_asked == ""
    assert processed.outcome == ProposalOutcome.MERGED and "the classifier model: Same." in processed.reason
