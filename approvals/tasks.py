"""Celery tasks: take ids, call one service."""

from celery import shared_task

from approvals.services import approvals_sweep


@shared_task(name="approvals.sweep", ignore_result=True)
def sweep_approvals() -> dict:
    return approvals_sweep()


@shared_task(name="approvals.notify", ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notify(approval_id: int, event: str) -> int:
    from approvals.notifications import approval_notify

    return approval_notify(approval_id=approval_id, event=event)


@shared_task(name="approvals.webhook", ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=6)
def webhook(approval_id: int, event: str) -> str:
    from approvals.notifications import approval_webhook_deliver

    return approval_webhook_deliver(approval_id=approval_id, event=event)
