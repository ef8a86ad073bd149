"""A run with a stored trace of any size, written as the exporter writes it (one INSERT a batch)."""

import pytest
from django.utils import timezone

from agents.services import run_start
from tests.factories import make_looper, make_trace


@pytest.fixture
def looper(cast):
    return make_looper(cast.acme)


@pytest.fixture
def traced_run(cast, looper):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    run.status, run.finished_at = "completed", timezone.now()
    run.save(update_fields=["status", "finished_at"])
    make_trace(run, 50, error_every=3)
    return run


@pytest.fixture
def empty_outbox():
    """The OTLP outbox, its counters and the relay's lease cleared before and after the test."""
    from console.health import redis_client
    from traces import otlp

    keys = (otlp.OUTBOX, otlp.DROPPED, otlp.LEASE, otlp.SENT)
    redis_client().delete(*keys)
    yield
    redis_client().delete(*keys)
