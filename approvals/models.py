"""Approval policies, requests and the decisions people take on them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.models import TenantScopedQuerySet


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    ESCALATED = "escalated"  # overdue: still open, and the escalation was notified
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


OPEN = (ApprovalStatus.PENDING, ApprovalStatus.ESCALATED)


class ApprovalKind(models.TextChoices):
    TOOL_CALL = "tool_call", "tool call"
    PLAN = "plan", "plan"  # arguments: {"steps": [...]}; an edit rewrites the steps
    QUESTION = "question", "question"  # arguments: {"question": ..., "options": [...]}; decided by an answer
    # A budget used up, asking whether the run goes on (costs' gate): arguments say the budget, spent vs limit
    # and the extension asked ({"extension_usd": "0.20", "extension_tokens": 1000}); an edit changes the extension.
    BUDGET = "budget", "budget extension"


class ApprovalPolicy(models.Model):
    """A tenant's rule for which tool calls need approval (see approvals.policy for how rules combine)."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="approval_policies")
    name = models.CharField(max_length=100)
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    tool = models.CharField(max_length=100, blank=True)
    min_risk = models.PositiveSmallIntegerField(default=3)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    condition = models.JSONField(default=dict, blank=True)
    allow_self_approval = models.BooleanField(default=False)
    sla_minutes = models.PositiveIntegerField(default=60)
    expire_minutes = models.PositiveIntegerField(default=24 * 60)
    expiry_outcome = models.CharField(max_length=16, default="reject")  # reject | cancel_run
    escalate_to_role = models.CharField(max_length=16, default="admin")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]


class ApprovalRequest(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="approval_requests")
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="approval_requests")
    step = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=ApprovalKind.choices, default=ApprovalKind.TOOL_CALL)
    call_id = models.CharField(max_length=100)
    tool = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict)
    reason = models.TextField(blank=True)  # the agent's stated reason
    risk = models.PositiveSmallIntegerField()
    policy = models.CharField(max_length=200)  # which rule required approval
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    allow_self_approval = models.BooleanField(default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")  # who started the run
    due_at = models.DateTimeField(null=True, blank=True)  # the SLA: escalated when overdue
    expires_at = models.DateTimeField(null=True, blank=True)  # then the expiry outcome applies
    expiry_outcome = models.CharField(max_length=16, default="reject")
    escalate_to_role = models.CharField(max_length=16, default="admin")
    escalated_at = models.DateTimeField(null=True, blank=True)
    approved_arguments = models.JSONField(null=True, blank=True)  # set when a reviewer edited them
    tool_invocation = models.ForeignKey("agents.ToolInvocation", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    answer = models.TextField(blank=True)  # a question's answer
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")  # who is asked to decide ("assigned to me")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "step", "call_id"], name="one_approval_per_call"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "-created_at"], name="approval_queue"),
                   models.Index(fields=["status", "due_at"], name="approval_sla"),
                   models.Index(fields=["tenant", "assignee", "status"], name="approval_assignee")]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def arguments_to_run(self) -> dict:
        return self.approved_arguments if self.approved_arguments is not None else self.arguments


class ApprovalDecision(models.Model):
    """One person's decision on a request. Four-eyes counts distinct people who approved the same arguments."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="+")
    approval = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=16)  # approve | reject
    arguments = models.JSONField(default=dict)  # what an approval approved
    note = models.TextField(blank=True)
    client_key = models.CharField(max_length=100, blank=True)  # a repeated submit with the same key is the same decision
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["at"]
        constraints = [models.UniqueConstraint(fields=["approval", "client_key"], condition=~models.Q(client_key=""),
                                               name="one_decision_per_client_key")]


class ApprovalWebhook(models.Model):
    """Where a tenant's approval events are POSTed, signed with HMAC-SHA256 of the body."""

    tenant = models.OneToOneField("console.Tenant", on_delete=models.CASCADE, related_name="approval_webhook")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_status = models.CharField(max_length=200, blank=True)  # the last delivery's outcome, for the admin page

    objects = TenantScopedQuerySet.as_manager()
