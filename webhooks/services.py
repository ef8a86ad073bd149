"""Run webhooks (and budget thresholds crossed, recorded by costs through event_deliveries_record): set up by admins (URL checked, secret shown once), deliveries made with the run's change and
sent after commit, signed like the approval webhooks, through approvals.outbound (https, public addresses only,
checked at send time, no redirects), retried with backoff, retried again by an admin from the log."""

from __future__ import annotations

import json
import secrets
import uuid

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from agents.models import RunStatus
from approvals import outbound
from approvals.notifications import signature
from console.services import audit_record
from webhooks.models import ALL_EVENTS, Delivery, RunEvent, RunWebhook

EVENT_OF_STATUS = {RunStatus.COMPLETED: RunEvent.COMPLETED, RunStatus.FAILED: RunEvent.FAILED,
                   RunStatus.WAITING_FOR_HUMAN: RunEvent.WAITING}
MAX_ATTEMPTS = 7
MAX_WEBHOOKS = 10


class WebhookRefused(Exception):
    """A webhook that cannot be saved; the message says why."""


def webhook_create(*, tenant, url: str, events, actor) -> tuple[RunWebhook, str]:
    """A new webhook; returns it with its signing secret (shown once)."""
    url = (url or "").strip()
    if len(url) > 500 or (problem := outbound.url_problem(url)):
        raise WebhookRefused(problem or "Keep the URL under 500 characters.")
    events = [e for e in ALL_EVENTS if e in set(events)]
    if not events:
        raise WebhookRefused(f"Choose at least one event: {', '.join(ALL_EVENTS)}.")
    if RunWebhook.objects.for_tenant(tenant).count() >= MAX_WEBHOOKS:
        raise WebhookRefused(f"A tenant has at most {MAX_WEBHOOKS} run webhooks; remove one first.")
    secret = "whsec_" + secrets.token_urlsafe(24)
    with transaction.atomic():
        hook = RunWebhook.objects.create(tenant=tenant, url=url, secret=secret, events=events,
                                         created_by=actor if getattr(actor, "pk", None) else None)
        audit_record(tenant=tenant, actor=actor, verb="run_webhook.created", target=url, data={"events": events})
    return hook, secret


def webhook_delete(*, hook: RunWebhook, actor) -> None:
    with transaction.atomic():
        hook.delete()
        audit_record(tenant=hook.tenant, actor=actor, verb="run_webhook.removed", target=hook.url)


def _payload(run, event: str, delivery_id: str) -> dict:
    return {
        "event": event, "id": delivery_id, "tenant": run.tenant.slug,
        "run": {"number": run.number, "agent": run.agent.slug, "agent_version": run.agent_version,
                "status": run.status, "goal": run.goal, "step": run.step, "answer": run.answer,
                "reason": run.terminal_reason or run.next_action, "cost_usd": str(run.cost_usd)},
        "link": f"{settings.CONSOLE_URL}{reverse('run_detail', args=[run.tenant.slug, run.number])}",
    }


def run_status_changed(run, old: str, new: str) -> None:
    """agents.hooks status hook: a delivery per subscribed webhook, in the change's transaction; sent after commit."""
    event = EVENT_OF_STATUS.get(new)
    if event is not None:
        event_deliveries_record(tenant_id=run.tenant_id, event=event, run_id=run.pk,
                                payload_of=lambda delivery_id: _payload(run, event, delivery_id))


def event_deliveries_record(*, tenant_id: int, event: str, payload_of, run_id: int | None = None) -> int:
    """A delivery of ``event`` per enabled webhook of the tenant subscribed to it, in the caller's transaction
    (so it exists exactly when the change it tells of committed), sent after commit. ``payload_of(delivery_id)``
    makes each body. Returns how many."""
    hooks = [h for h in RunWebhook.objects.for_tenant(tenant_id).filter(enabled=True) if event in h.events]
    if not hooks:
        return 0
    deliveries = Delivery.objects.bulk_create([
        Delivery(tenant_id=tenant_id, webhook=hook, run_id=run_id, event=event,
                 payload=payload_of(str(uuid.uuid4()))) for hook in hooks])
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def _enqueue(ids: list[int]) -> None:
    from webhooks.tasks import deliver

    for delivery_id in ids:
        deliver.delay(delivery_id)


def delivery_attempt(*, delivery_id: int) -> Delivery | None:
    """One attempt: POST the delivery's payload, signed; keeps the outcome's class. The delivery's status says
    whether it is worth another attempt (retrying) or done (delivered, failed)."""
    delivery = Delivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (Delivery.Status.DELIVERED, Delivery.Status.FAILED):
        return delivery
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    result = outbound.post(delivery.webhook.url, body, headers={
        "Content-Type": "application/json", "User-Agent": "Proctor-Webhook/1", "X-Proctor-Event": delivery.event,
        "X-Proctor-Delivery": delivery.payload.get("id", str(delivery.pk)),
        "X-Proctor-Signature": signature(delivery.webhook.secret, body)})
    delivery.attempts += 1
    delivery.last_attempt_at = timezone.now()
    delivery.outcome = result.outcome
    if result.outcome == outbound.DELIVERED:
        delivery.status = Delivery.Status.DELIVERED
    elif result.retry and delivery.attempts < MAX_ATTEMPTS:
        delivery.status = Delivery.Status.RETRYING
    else:
        delivery.status = Delivery.Status.FAILED
    Delivery.objects.for_tenant(delivery.tenant_id).filter(pk=delivery.pk).update(
        attempts=delivery.attempts, last_attempt_at=delivery.last_attempt_at, outcome=delivery.outcome[:200],
        status=delivery.status)
    return delivery


def delivery_retry(*, delivery: Delivery, actor) -> Delivery:
    """An admin sends a delivery again (a failed one, or one still retrying): attempts start over."""
    with transaction.atomic():
        Delivery.objects.for_tenant(delivery.tenant_id).filter(pk=delivery.pk).update(
            status=Delivery.Status.PENDING, attempts=0)
        audit_record(tenant=delivery.tenant_id, actor=actor, verb="run_webhook.retried",
                     target=delivery.webhook.url, data={"delivery": delivery.pk, "event": delivery.event})
        transaction.on_commit(lambda: _enqueue([delivery.pk]))
    delivery.refresh_from_db()
    return delivery
