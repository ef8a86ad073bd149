import pytest

from agents.services import run_start
from memory.models import ProposalOutcome
from memory.services import proposal_create, proposal_process


@pytest.fixture
def max_run(cast, renewals):
    """A run Max (member of Acme) started with the demo renewals agent."""
    return run_start(tenant=cast.acme, agent=renewals, goal="Prepare the renewal for ACME-042",
                     requested_by=cast.member)


@pytest.fixture
def propose(django_capture_on_commit_callbacks):
    """Propose through the pipeline as memory.remember does, and process it (as the task does after commit)."""
    counter = {"n": 0}

    def go(run, content, *, type="fact", subject="", scope="tenant", confidence=0.7, step=1):
        counter["n"] += 1
        proposal = proposal_create(tenant=run.tenant, run=run, step=step, call_id=f"call_{counter['n']}", scope=scope,
                                   type=type, content=content, subject=subject, confidence=confidence)
        with django_capture_on_commit_callbacks(execute=True):  # the run is told after the pipeline's commit
            processed = proposal_process(proposal.pk)
        assert processed.outcome != ProposalOutcome.PENDING
        return processed

    return go
