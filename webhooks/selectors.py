"""Reads for run webhooks."""

from __future__ import annotations

from webhooks.models import Delivery, RunWebhook


def webhook_list(*, tenant) -> list[RunWebhook]:
    return list(RunWebhook.objects.for_tenant(tenant))


def delivery_log(*, tenant, limit: int = 50) -> list[Delivery]:
    return list(Delivery.objects.for_tenant(tenant).select_related("webhook", "run")[:limit])
