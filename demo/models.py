"""The demo systems: the real tables the demo tools act on (see the Demo systems page)."""

from __future__ import annotations

from django.db import models

from console.models import TenantScopedQuerySet


class CrmAccount(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    key = models.CharField(max_length=20)  # e.g. ACME-042
    name = models.CharField(max_length=200)
    success_manager = models.EmailField()
    arr_usd = models.PositiveIntegerField(default=0)
    renewal_date = models.DateField(null=True, blank=True)
    health = models.CharField(max_length=20, default="good")

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="crm_key_per_tenant")]
        ordering = ["key"]


class CrmNote(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    account = models.ForeignKey(CrmAccount, on_delete=models.CASCADE, related_name="notes")
    body = models.TextField()
    author = models.CharField(max_length=100)
    run = models.ForeignKey("agents.Run", null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()


class EmailMessage(models.Model):
    """Drafts and the outbox. `sent_at` set = it left the building (exactly once per key)."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    run = models.ForeignKey("agents.Run", null=True, blank=True, on_delete=models.SET_NULL)
    to = models.EmailField()
    subject = models.CharField(max_length=300)
    body = models.TextField()
    sent_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()


class CalendarBooking(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    run = models.ForeignKey("agents.Run", null=True, blank=True, on_delete=models.SET_NULL)
    title = models.CharField(max_length=200)
    attendees = models.JSONField(default=list)
    starts_at = models.DateTimeField()
    minutes = models.PositiveIntegerField(default=30)
    idempotency_key = models.CharField(max_length=200, unique=True)

    objects = TenantScopedQuerySet.as_manager()


class Invoice(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    run = models.ForeignKey("agents.Run", null=True, blank=True, on_delete=models.SET_NULL)
    account = models.ForeignKey(CrmAccount, on_delete=models.PROTECT)
    amount_usd = models.DecimalField(max_digits=12, decimal_places=2)
    memo = models.CharField(max_length=300, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()
