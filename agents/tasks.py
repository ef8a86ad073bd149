"""Celery tasks: take ids, call one service."""

import os
import socket

import redis
from celery import current_app, shared_task
from django.conf import settings

from agents.services import run_advance, runs_sweep
from console.health import redis_client


@shared_task(name="agents.run_step", ignore_result=True)
def run_step(run_id: int) -> str:
    return run_advance(run_id=run_id, worker=f"{socket.gethostname()}:{os.getpid()}")


@shared_task(name="agents.sweep_runs", ignore_result=True)
def sweep_runs() -> int:
    return runs_sweep()


def steps_waiting() -> bool:
    """Whether tasks wait in the broker's queue for a worker. Asked once when a turn is over: a run
    hands its worker back only if someone else wants it. With a broker other than Redis, or Redis
    not answering, the answer is yes (hand back, as always)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return True
    try:
        return redis_client(url=url).llen(current_app.conf.task_default_queue) > 0
    except redis.RedisError:
        return True
