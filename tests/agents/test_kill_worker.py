"""kill -9 the worker in the middle of runs: every run completes from its last
checkpoint, each email is sent exactly once, seq has no gaps, nothing is doubled."""

import random
import signal
import time

from django.db.models import Count

from agents.models import Agent, ModelCall, RunEvent, RunStatus, ToolInvocation
from agents.services import run_start
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from demo.models import EmailMessage
from demo.seed import seed_demo_systems
from tests.conftest import wait_for

FAST_RECOVERY = {"RUN_LEASE_SECONDS": "2", "RUN_SWEEP_SECONDS": "1", "RUN_SWEEP_AFTER_SECONDS": "2"}
RUNS = 8


def test_runs_survive_repeated_sigkill_and_send_each_email_once(cast, start_worker):
    seed_demo_systems(cast.acme)
    agent = Agent.objects.get(tenant=cast.acme, slug="renewals")
    agent.plan_mode = False
    agent.tools = ["crm.get_account", "email.send"]
    agent.save()

    keys = ["ACME-042", "ACME-017", "ACME-105"]
    runs = [run_start(tenant=cast.acme, agent=agent, goal=f"Prepare the renewal plan for account {keys[i % 3]}",
                      requested_by=cast.member) for i in range(RUNS)]
    rng = random.Random(7)
    for round_number in range(4):
        worker = start_worker(f"k{round_number}", concurrency=2, beat=True, env=FAST_RECOVERY)
        deadline = time.monotonic() + rng.uniform(0.5, 2.0)  # a different point each time
        while time.monotonic() < deadline:
            approve_pending(cast.reviewer)  # so the kill can land around the sends too
            time.sleep(0.05)
        worker.stop(signal.SIGKILL)
    start_worker("final", concurrency=2, beat=True, env=FAST_RECOVERY)

    def all_done():
        approve_pending(cast.reviewer)
        return all(r.status in (RunStatus.COMPLETED, RunStatus.FAILED) for r in map(_refresh, runs))

    wait_for(all_done, 90, interval=0.5, message="every run to finish after the crashes")
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * RUNS, [r.terminal_reason for r in runs]
    for run in runs:
        seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1)), f"gap in run {run.pk}"
        assert EmailMessage.objects.filter(run=run, sent_at__isnull=False).count() == 1  # sent once, never twice
        # The conversation the model saw survived the crashes: dense, nothing doubled.
        messages = [row.message for row in run.messages.order_by("seq")]
        assert list(run.messages.order_by("seq").values_list("seq", flat=True)) == list(range(1, len(messages) + 1))
        assert run.checkpoints.order_by("-step").first().state["pending_call"] is None  # nothing left to run
        shape = [(m["role"], (m.get("tool_call") or {}).get("tool") or m.get("tool")) for m in messages]
        assert shape == [("user", None), ("assistant", "crm.get_account"), ("tool", "crm.get_account"),
                         ("assistant", "email.send"), ("tool", "email.send"), ("assistant", None)], shape
    # Each side effect has one invocation row; each model attempt one row.
    assert not ToolInvocation.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not ModelCall.objects.values("run", "step", "attempt").annotate(n=Count("id")).filter(n__gt=1).exists()


def approve_pending(reviewer):
    for approval in ApprovalRequest.objects.filter(status="pending"):
        approval_decide(approval=approval, approve=True, actor=reviewer)


def _refresh(run):
    run.refresh_from_db()
    return run
