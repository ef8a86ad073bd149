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
