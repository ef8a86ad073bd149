"""The offline demo with a real Celery worker: Max's seeded preference shapes the drafted email, the agent
proposes the champion from a CRM note (stored after commit by the pipeline task), a second run merges it,
and a changed note supersedes it."""

from agents.models import Agent, RunEvent, RunStatus
from agents.services import run_start
from demo.models import CrmNote, EmailMessage
from memory.models import MemoryRecord, MemoryUse
from memory.seed import seed_demo_memories
from tests.conftest import wait_for
from tests.factories import RENEWAL_GOAL


def _run_to_wait(cast, agent):
    run = run_start(tenant=cast.acme, agent=agent, goal=RENEWAL_GOAL, requested_by=cast.member)

    def waiting():
        run.refresh_from_db()
        return run.status in (RunStatus.WAITING_FOR_HUMAN, RunStatus.FAILED, RunStatus.COMPLETED)

    wait_for(waiting, 60, message="the run to wait for the send's approval")
    assert run.status == RunStatus.WAITING_FOR_HUMAN, run.terminal_reason
    outcome = lambda: RunEvent.objects.filter(run=run, type="memory.proposal").first()  # noqa: E731
    return run, wait_for(outcome, 30, message="the pipeline's outcome on the run").payload


def test_the_demo_uses_proposes_merges_and_supersedes_memories(cast, renewals, start_worker):
    worker = start_worker()
    try:
        _demo(cast)
    except AssertionError:
        print(worker.output()[-6000:])
        raise


def _demo(cast):
    seed_demo_memories(cast.acme)
    agent = Agent.objects.get(tenant=cast.acme, slug="renewals-memory")
    preference = MemoryRecord.objects.get(tenant=cast.acme, user=cast.member, subject="email format")

    first, outcome = _run_to_wait(cast, agent)
    assert outcome["outcome"] == "stored"
    champion = MemoryRecord.objects.get(pk=outcome["record"])
    assert champion.content == "The champion at ACME-042 is Dana (VP Ops)." and champion.source_run == first
    draft = EmailMessage.objects.filter(tenant=cast.acme).order_by("id").first()
    assert draft.body.startswith("Hi,\n\nIn short:\n- ARR")  # Max's preference, used
    assert MemoryUse.objects.filter(run=first, record=preference).exists()

    second, outcome = _run_to_wait(cast, agent)
    assert outcome["outcome"] == "merged" and outcome["record"] == champion.pk
    assert MemoryUse.objects.filter(run=second, record=champion).exists()  # the agent was told what it had learned
    assert MemoryRecord.objects.filter(tenant=cast.acme, subject="champion of ACME-042").count() == 1

    CrmNote.objects.filter(tenant=cast.acme, body__startswith="Champion").update(body="Champion: Lee (CFO).")
    _, outcome = _run_to_wait(cast, agent)
    assert outcome["outcome"] == "superseded" and outcome["other"] == champion.pk
    champion.refresh_from_db()
    assert champion.status == "superseded" and champion.superseded_by_id == outcome["record"]
    assert MemoryRecord.objects.get(pk=outcome["record"]).content == "The champion at ACME-042 is Lee (CFO)."
