"""The same step delivered more than once (broker redelivery, sweeper, a retry racing the original):
one lease holder at a time, and no row written twice."""

from collections import Counter

from agents.models import ModelCall, RunEvent, RunStatus, ToolInvocation
from agents.services import run_advance, run_start
from agents.tasks import run_step
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from demo.models import EmailMessage
from tests.conftest import at_once, wait_for
from tests.factories import RENEWAL_GOAL


def test_two_deliveries_at_the_same_moment_get_one_lease(cast, renewals, transactional_db):
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)
    outcomes = at_once(lambda: run_advance(run_id=run.pk, worker="w1"), lambda: run_advance(run_id=run.pk, worker="w2"))
    assert len(outcomes) == 2 and outcomes.count("no_lease") == 1, outcomes  # one did the step, one found it taken
    assert ModelCall.objects.filter(run=run).count() == 1
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_flood_of_duplicate_step_tasks_writes_nothing_twice(cast, renewals, start_worker):
    start_worker(concurrency=4)
    run = run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member)

    def duplicates_until(*statuses):
        def reached():
            run_step.delay(run.pk)  # an extra delivery of the same step, again and again
            run.refresh_from_db()
            return run.status in statuses
        wait_for(reached, 60, interval=0.02, message=f"run to reach {statuses}")

    duplicates_until(RunStatus.WAITING_FOR_HUMAN)
    approval_decide(approval=ApprovalRequest.objects.get(run=run), approve=True, actor=cast.reviewer)
    duplicates_until(RunStatus.COMPLETED, RunStatus.FAILED)
    assert run.status == RunStatus.COMPLETED, run.terminal_reason

    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    calls = Counter(ModelCall.objects.filter(run=run).values_list("step", "attempt"))
    assert set(calls.values()) == {1} and len(calls) == run.step
    tools = Counter(ToolInvocation.objects.filter(run=run).values_list("tool", flat=True))
    assert tools == {"crm.get_account": 1, "email.draft": 1, "email.send": 1}
    assert EmailMessage.objects.filter(sent_at__isnull=False).count() == 1
    assert RunEvent.objects.filter(run=run, type="status", payload__to="completed").count() == 1
