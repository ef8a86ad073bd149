"""The write pipeline with a classifier model configured: the model (faked at its HTTP boundary, speaking the
OpenAI chat-completions API) decides add / merge / supersede / ignore; an answer that is not usable, or no model
configured, leaves the decision to the offline rules."""

import json

import pytest

from memory import services
from memory.models import MemoryRecord, ProposalOutcome
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
