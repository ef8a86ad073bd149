"""A tenant's webhooks (run events, and budget thresholds crossed) and the log of what was sent to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.models import TenantScopedQuerySet


class RunEvent(models.TextChoices):
    COMPLETED = "run.completed", "Run completed"
    FAILED = "run.failed", "Run failed"
    WAITING = "run.waiting_for_person", "Run waits for a person"
    BUDGET_THRESHOLD = "budget.threshold", "A budget crossed a threshold"  # once per budget, period and threshold


ALL_EVENTS = [event.value for event in RunEvent]


def all_events() -> list[str]:
    return list(ALL_EVENTS)


class RunWebhook(models.Model):
    """Where a tenant's run events are POSTed, signed with HMAC-SHA256 of the body (X-Proctor-Signature)."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="run_webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)  # shown once when made; the receiver checks signatures with it
    events = models.JSONField(default=all_events)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class Delivery(models.Model):
    """One event for one webhook: made in the transaction of the run's change, sent after commit, retried."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        RETRYING = "retrying"
        FAILED = "failed"

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    webhook = models.ForeignKey(RunWebhook, on_delete=models.CASCADE, related_name="deliveries")
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, null=True, blank=True,
                            related_name="+")  # none for an event of no one run
    event = models.CharField(max_length=40, choices=RunEvent.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=200, blank=True)  # the last attempt's class (approvals.outbound)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="delivery_tenant_recent")]

    @property
    def run_number(self) -> int | None:
        """The run the event is about, as its payload names it (a budget's event may be about no run)."""
        return (self.payload.get("run") or {}).get("number")
