"""The gate hook: before each model call, a registered gate may end the run with its reason; the model is
not called. The runtime knows nothing of who registered it (costs' budgets do)."""

from agents.hooks import registered
from agents.models import ModelCall
from agents.services import run_start
from tests.factories import advance, make_looper


def test_a_gate_that_gives_a_reason_ends_the_run_before_its_next_model_call(cast):
    seen = []

    def gate(info, estimate):
        seen.append((info.step, estimate.models, estimate.input_tokens > 0, estimate.max_output_tokens))
        return "stopped by the test gate" if info.step == 3 else None

    with registered(gates=[gate]):
        run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 5 times",
                                requested_by=cast.member))
    assert run.status == "failed" and run.terminal_reason == "stopped by the test gate"
    assert [s[0] for s in seen] == [1, 2, 3] and seen[0][1] == ("demo:noop",) and seen[0][2]
    assert ModelCall.objects.filter(run=run).count() == 2  # the third call was never made


def test_a_gate_that_asks_makes_the_run_wait_for_a_person_then_acts_on_their_decision(cast):
    from agents.hooks import GateAsk
    from approvals.models import ApprovalRequest
    from approvals.services import approval_decide

    granted, decisions = set(), []

    def decided(review):
        decisions.append((review.status, review.decided_by, review.arguments_to_run))
        granted.add(review.id)
        return None

    def gate(info, estimate):
        if info.step == 2 and not granted:
            return GateAsk(key="test:more", kind="budget", title="more steps", reason="the test gate asks",
                           arguments={"budget": "Test", "extension_tokens": 10}, decided=decided)
        return None

    with registered(gates=[gate]):
        run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 3 times",
                                requested_by=cast.member))
        assert run.status == "waiting_for_human" and ModelCall.objects.filter(run=run).count() == 1
        request = ApprovalRequest.objects.get(run=run)
        assert (request.kind, request.call_id, request.step, request.reason) == ("budget", "test:more", 2,
                                                                                 "the test gate asks")
        approval_decide(approval=request, approve=True, actor=cast.reviewer)
        run = advance(run)
    assert run.status == "completed"
    assert decisions == [("approved", "rita", {"budget": "Test", "extension_tokens": 10})]


def test_a_refused_ask_ends_the_run_with_the_gates_reason(cast):
    from agents.hooks import GateAsk
    from approvals.models import ApprovalRequest
    from approvals.services import approval_decide

    def gate(info, estimate):
        return GateAsk(key="test:ask", kind="budget", title="go on?", reason="asks", arguments={},
                       decided=lambda review: None if review.status == "approved" else "refused by a person")

    with registered(gates=[gate]):
        run = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 3 times",
                                requested_by=cast.member))
        approval_decide(approval=ApprovalRequest.objects.get(run=run), approve=False, actor=cast.reviewer)
        run = advance(run)
    assert run.status == "failed" and run.terminal_reason == "refused by a person"
    assert not ModelCall.objects.filter(run=run).exists()
