"""Celery tasks: take ids, call one service."""

from celery import shared_task

from approvals.services import approvals_sweep


@shared_task(name="approvals.sweep", ignore_result=True)
def sweep_approvals() -> dict:
    return approvals_sweep()
