import pytest

from agents.services import run_start
from tests.factories import RENEWAL_GOAL, advance


@pytest.fixture
def approval(cast, renewals):
    """The pending approval of email.send in a renewal run max started."""
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    return run.approval_requests.get()
