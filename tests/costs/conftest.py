import pytest

from agents.services import run_start
from tests.factories import advance, make_looper


@pytest.fixture
def spend(cast, settings):
    """Runs of Acme's looper that spent at the demo model's simulated price: ``spend((times, who), …)``."""
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"

    def runs(*plan):
        agent = make_looper(cast.acme)
        return [advance(run_start(tenant=cast.acme, agent=agent, goal=f"Call noop {times} times", requested_by=who))
                for times, who in plan]
    return runs
