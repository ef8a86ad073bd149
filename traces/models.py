"""The runs' traces as stored: one row per finished span (the runtime produces them, agents.tracing),
and the engine's decisions as structured records (written with the step that made them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.models import TenantScopedQuerySet

KINDS = ("run", "step", "model", "tool", "approval", "memory_search", "memory_write", "checkpoint", "budget", "other")


class Span(models.Model):
    """Spans stored by the batching exporter (traces.exporter), for the trace timeline. ``tokens`` and
    ``cost_usd`` are the span's own (a model call's usage and price), copied out of its attributes when
    stored, so a timeline's subtree totals never read the attributes."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="spans", db_index=False)  # span_run_timeline leads with run
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)  # one of KINDS
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    status = models.CharField(max_length=16, default="unset")  # unset, ok, error
    tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    attributes = models.JSONField(default=dict)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trace_id", "span_id"], name="span_unique")]
        indexes = [models.Index(fields=["run", "started_at"], name="span_run_timeline"),
                   # "has an error" on the traces list: the failed spans of a run, not all of them
                   models.Index(fields=["run"], condition=models.Q(status="error"), name="span_run_errors")]


class DecisionType(models.TextChoices):
    CALL_TOOL = "call_tool", "call a tool"
    PLAN = "plan", "plan"
    ASK = "ask", "ask a person"
    FINISH = "finish", "finish"
    FAIL = "fail", "fail"
    REFUSE = "refuse", "refuse a call"


class DecisionRecord(models.Model):
    """One engine decision, as a record a person can read: its type, the tool chosen, a summary from
    the model's visible text (never hidden reasoning), the inputs it referred to (messages, memory
    ids, tool results) and the policy checks with their outcome."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="decisions", db_index=False)  # its unique constraint leads with run
    step = models.PositiveIntegerField()
    type = models.CharField(max_length=16, choices=DecisionType.choices)
    tool = models.CharField(max_length=100, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    inputs = models.JSONField(default=dict)  # {"messages": n, "memory_ids": [...], "tool_results": [call ids]}
    policy_checks = models.JSONField(default=list)  # [{"tool", "risk", "needs_approval", "rule", "outcome"}]
    detail = models.JSONField(default=dict)  # the engine's action as it decided it (the call, the reason)
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="one_decision_per_step")]


class ReadOnlyTools(models.TextChoices):
    LIVE = "live", "run them live"
    RECORDED = "recorded", "answer them from the recording"


class ReplayBatch(models.Model):
    """The last N runs of an agent replayed against a version, model or instructions (a Celery job)."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    runs_wanted = models.PositiveIntegerField()
    runs_started = models.PositiveIntegerField(default=0)  # progress of the job that starts them
    model = models.CharField(max_length=100, blank=True)
    agent_version = models.PositiveIntegerField(null=True, blank=True)
    instructions = models.TextField(null=True, blank=True)
    read_only = models.CharField(max_length=16, choices=ReadOnlyTools.choices, default=ReadOnlyTools.RECORDED)
    error = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()


class Replay(models.Model):
    """A run started as a replay of another: with another model, agent version or instructions. Every
    tool with a side effect (risk ≥ 1) is answered from the original's recorded results (traces.replay);
    read-only tools run live or from the recording, as chosen. Nobody is asked to approve anything."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="+")
    original = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="replays")
    run = models.OneToOneField("agents.Run", on_delete=models.CASCADE, related_name="replay_of")
    model = models.CharField(max_length=100, blank=True)  # empty: the agent's
    agent_version = models.PositiveIntegerField(null=True, blank=True)  # null: the agent's current version
    instructions = models.TextField(null=True, blank=True)  # null: the version's
    read_only = models.CharField(max_length=16, choices=ReadOnlyTools.choices, default=ReadOnlyTools.RECORDED)
    batch = models.ForeignKey(ReplayBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()
