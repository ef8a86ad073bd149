"""Celery tasks: take ids, call one service."""

from celery import shared_task

from memory.services import memories_expire, proposal_process


@shared_task(name="memory.process_proposal", ignore_result=True, autoretry_for=(OSError,), retry_backoff=True,
             max_retries=5)
def process_proposal(proposal_id: int) -> str:
    return proposal_process(proposal_id).outcome


@shared_task(name="memory.expire", ignore_result=True)
def expire() -> int:
    return memories_expire()
