"""The step's extension points: an app registers into each (context, usage, decision, span sinks)
and sees what memory, costs and traces will need, from a real worker; the runtime imports none of them."""

import json

from agents.hooks import ContextBlock, registered
from agents.models import RunEvent
from agents.services import run_start
from console.models import AuditEvent
from tests.conftest import wait_for
from tests.factories import advance, make_looper


def test_an_app_registered_in_every_hook_sees_each_step_from_a_real_worker(cast, start_worker, tmp_path):
    probe = tmp_path / "probe.jsonl"
    start_worker("hooks", env={"PROCTOR_EXTRA_APPS": "tests.hook_probe", "HOOK_PROBE_FILE": str(probe),
                               "SPAN_EXPORT_DELAY_MS": "50"})
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 2 times", requested_by=cast.member)

    def finished():
        run.refresh_from_db()
        return run.status == "completed"

    wait_for(finished, 30, message="the run completes")
    lines = lambda: [json.loads(line) for line in probe.read_text().splitlines()] if probe.exists() else []  # noqa: E731
    wait_for(lambda: any(line["hook"] == "span" and line["name"].startswith("step") for line in lines()), 10,
             message="the step spans reach the registered sink")
    seen = lines()
    by_hook = {hook: [line for line in seen if line["hook"] == hook] for hook in ("context", "usage", "decision")}

    # Context: asked before each model call, for this run, with who it is for.
    assert [line["step"] for line in by_hook["context"]] == [1, 2, 3]
    assert {(line["run"], line["requested_by"]) for line in by_hook["context"]} == {(run.pk, cast.member.pk)}
    # Usage: each model attempt and each tool call, attributed to its step.
    assert [(line["kind"], line["step"]) for line in by_hook["usage"]] == [
        ("model", 1), ("tool", 1), ("model", 2), ("tool", 2), ("model", 3)]
    # Decision: the engine's action with the policy checks and the context it was given.
    assert [line["action"] for line in by_hook["decision"]] == ["CallTool", "CallTool", "Finish"]
    noop_check = by_hook["decision"][0]["checks"]["noop"]
    assert noop_check["risk"] == 0 and noop_check["needs_approval"] is False and noop_check["rule"]
    assert by_hook["decision"][0]["context"] == [{"source": "probe", "references": [{"id": 1, "version": 1, "score": 0.9}]}]
    # The decision hook's own rows were written with the steps, once each.
    assert list(AuditEvent.objects.for_tenant(cast.acme).filter(verb="probe.decision").order_by("id").values_list(
        "data__step", flat=True)) == [1, 2, 3]
    # The run says which context each step used.
    used = RunEvent.objects.filter(run=run, type="context.used").order_by("seq")
    assert [event.payload["step"] for event in used] == [1, 2, 3]


def test_context_blocks_reach_the_model_delimited_and_are_not_kept_in_the_conversation(cast, monkeypatch):
    from agents.services import step

    seen = []
    complete = step.complete

    def spying(**kwargs):
        seen.append(kwargs["messages"][-1].parts[-1].content)
        return complete(**kwargs)

    monkeypatch.setattr(step, "complete", spying)
    block = ContextBlock(source="memory", text="max prefers a short bullet summary.", references=({"id": 7},))
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    with registered(context=[lambda info: [block]]):
        run = advance(run)
    assert run.status == "completed"
    assert seen[0] == '<context source="memory">\nmax prefers a short bullet summary.\n</context>'
    assert all("short bullet" not in json.dumps(message.message) for message in run.messages.all())


def test_a_failing_context_provider_does_not_stop_the_run(cast):
    def broken(info):
        raise RuntimeError("memory store unreachable")

    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    with registered(context=[broken]):
        assert advance(run).status == "completed"


def test_a_usage_hook_that_fails_rolls_the_step_back_whole(cast):
    """Billing rows are never half-written: a usage hook that raises undoes its step, which is taken again."""
    calls = []

    def flaky(info, used, writes):
        calls.append(used.kind)
        if len(calls) == 1:
            raise RuntimeError("ledger unavailable")

    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    from agents.models import ModelCall, Run
    from agents.services import run_advance

    with registered(usage=[flaky]):
        try:
            run_advance(run_id=run.pk, worker="w1")
        except RuntimeError:
            pass
        assert ModelCall.objects.filter(run=run).count() == 0  # the step's rows went with it
        Run.objects.filter(pk=run.pk).update(lease_expires_at=None)  # as if the lease had expired
        assert advance(run).status == "completed"
    assert ModelCall.objects.filter(run=run, step=1).count() == 1
