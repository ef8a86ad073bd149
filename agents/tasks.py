"""Celery tasks: take ids, call one service."""

import os
import socket

from celery import shared_task

from agents.services import run_advance, runs_sweep

@shared_task(name="agents.run_step", ignore_result=True)
def run_step(run_id: int) -> str:
    return run_advance(run_id=run_id, worker=f"{socket.gethostname()}:{os.getpid()}")


@shared_task(name="agents.sweep_runs", ignore_result=True)
def sweep_runs() -> int:
    return runs_sweep()
