"""Approval records. This issue's minimal form: one reviewer decides a gated tool call."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.models import TenantScopedQuerySet


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class ApprovalRequest(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="approval_requests")
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="approval_requests")
    step = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, default="tool_call")
    call_id = models.CharField(max_length=100)
    tool = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict)
    reason = models.TextField(blank=True)  # the agent's stated reason
    risk = models.PositiveSmallIntegerField()
    policy = models.CharField(max_length=200)  # which rule required approval
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "step", "call_id"], name="one_approval_per_call"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "-created_at"], name="approval_queue")]
