"""Celery tasks: take ids, call one service."""

from celery import shared_task

from webhooks.models import Delivery
from webhooks.services import delivery_attempt


@shared_task(name="webhooks.deliver", bind=True, ignore_result=True, max_retries=None)
def deliver(self, delivery_id: int) -> str:
    delivery = delivery_attempt(delivery_id=delivery_id)
    if delivery is not None and delivery.status == Delivery.Status.RETRYING:
        raise self.retry(countdown=min(600, 2 ** delivery.attempts))  # 2 s, 4 s … (the attempts cap the retries)
    return delivery.status if delivery else "gone"
