"""The conversation is append-only: a row per message written with its step, the checkpoint keeps a
small state only when it changes, and the model's messages are built incrementally — resumed from the
database they are exactly what an uninterrupted turn built."""

import json

from pydantic_ai.messages import ModelMessagesTypeAdapter

from agents.gateway import to_messages
from agents.models import Checkpoint
from agents.services import run_start
from tests.factories import advance, make_looper


def _spy_on_model_calls(monkeypatch) -> list[str]:
    from agents.services import step

    seen, complete = [], step.complete

    def spying(**kwargs):
        seen.append(ModelMessagesTypeAdapter.dump_json(kwargs["messages"], exclude={"__all__": {"timestamp"}}).decode())
        return complete(**kwargs)

    monkeypatch.setattr(step, "complete", spying)
    return seen


def _without_timestamps(dumped: str):
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("timestamp", "run_id", "provider_response_id")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(json.loads(dumped))


def test_a_resumed_run_shows_the_model_exactly_what_an_uninterrupted_turn_did(cast, monkeypatch, settings):
    looper = make_looper(cast.acme)
    seen = _spy_on_model_calls(monkeypatch)

    settings.RUN_TURN_SECONDS = 60  # one turn: the messages are built incrementally, in memory
    whole = advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 5 times", requested_by=cast.member))
    in_one_turn = list(seen)
    seen.clear()
    settings.RUN_TURN_SECONDS = 0  # every step a new claim: the conversation is loaded from its rows each time
    resumed = advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 5 times", requested_by=cast.member),
                      until=("completed",))

    assert whole.status == resumed.status == "completed"
    assert len(in_one_turn) == len(seen) == 6
    assert [_without_timestamps(m) for m in in_one_turn] == [_without_timestamps(m) for m in seen]
    # Replay: the stored rows build the same messages as the last model call saw, plus the answer.
    rows = [row.message for row in resumed.messages.order_by("seq")]
    assert [row.seq for row in resumed.messages.order_by("seq")] == list(range(1, len(rows) + 1))
    rebuilt = ModelMessagesTypeAdapter.dump_json(to_messages(looper.instructions, rows[:-1])).decode()
    assert _without_timestamps(rebuilt) == _without_timestamps(seen[-1])


def test_a_conversation_too_large_to_come_with_the_claim_is_read_row_by_row_and_the_model_sees_the_same(
        cast, monkeypatch, settings):
    from agents import run_store

    looper = make_looper(cast.acme)
    seen = _spy_on_model_calls(monkeypatch)
    settings.RUN_TURN_SECONDS = 0  # every step a new claim
    advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member))
    with_the_claim = list(seen)
    seen.clear()
    monkeypatch.setattr(run_store, "CLAIM_MESSAGES_MAX_BYTES", 1)  # every conversation is over it
    read_alone = advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member))
    assert read_alone.status == "completed" and len(seen) == len(with_the_claim) == 4
    assert [_without_timestamps(m) for m in seen] == [_without_timestamps(m) for m in with_the_claim]


def test_the_claim_brings_the_messages_as_written_key_order_included(cast):
    """The conversation comes with the claim as the stored JSON text: a tool call's arguments keep the order the
    model wrote them in, so after a new claim the provider gets the same bytes (and its prompt cache still hits)."""
    from agents.models import ConversationMessage
    from agents.run_store import run_claim

    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    call = {"role": "assistant", "text": "", "tool_call": {"id": "c1", "tool": "noop",
                                                         "arguments": {"query": "acme", "limit": 5, "a": None}}}
    ConversationMessage.objects.create(run=run, seq=2, step=1, message=call)
    _, _, messages = run_claim(run_id=run.pk, worker="w1", lease_seconds=30)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert list(messages[1]["tool_call"]["arguments"]) == ["query", "limit", "a"]
    assert list(messages[1]) == ["role", "text", "tool_call"]


def test_a_long_runs_steps_write_only_their_messages_and_no_checkpoint_when_the_state_is_unchanged(cast, settings):
    settings.RUN_TURN_SECONDS = 600
    looper = make_looper(cast.acme, max_steps=2000, max_tokens=10**9)
    run = advance(run_start(tenant=cast.acme, agent=looper, goal="Call noop 1000 times", requested_by=cast.member),
                  until=("completed", "failed"))
    assert run.status == "completed", run.terminal_reason
    # Each step asked for noop and ran it in its own transaction: its state ended as it began.
    assert list(Checkpoint.objects.filter(run=run).values_list("step", "state")) == [(0, {"pending_call": None})]
    per_step = run.messages.values("step").order_by("step").distinct().count()
    assert per_step == 1002  # the goal (step 0), 1,000 calls, the answer: each step its own messages
    assert run.messages.filter(step=1000).count() == 2  # a call and its result
    assert run.messages.filter(step=1001).count() == 1  # the answer
    assert run.messages.count() == 2002
