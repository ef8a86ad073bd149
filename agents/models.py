"""The runtime's records: agents, runs and everything a run leaves behind.

Postgres is the system of record. A worker holds nothing between steps: the run
row, its last checkpoint, its events, model calls and tool invocations are all it
needs to continue anywhere.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.db import connection, models
from psycopg.types.json import Json

from console.models import TenantScopedQuerySet


class Agent(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60)
    description = models.CharField(max_length=300, blank=True)
    instructions = models.TextField()
    version = models.PositiveIntegerField(default=1)
    model = models.CharField(max_length=100, default="demo:planner")  # "<provider>:<model>"
    fallback_models = models.JSONField(default=list, blank=True)
    tools = models.JSONField(default=list, blank=True)  # allowlist of tool names
    max_steps = models.PositiveIntegerField(default=30)
    max_tokens = models.PositiveIntegerField(default=200_000)
    max_cost_usd = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("5"))
    max_seconds = models.PositiveIntegerField(default=3600)
    plan_mode = models.BooleanField(default=True)
    plan_approval = models.BooleanField(default=False)  # a proposed plan waits for a person (plan mode only)
    # What the agent does with memory: {"recall": bool (memories offered as context), "remember": bool (it may
    # propose memories)}; the memory app reads it. Versioned like the rest of the configuration.
    memory = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)  # a disabled agent starts no new runs; running ones go on
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="agent_slug_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def uses_demo_model(self) -> bool:
        return self.model.startswith("demo:")


class AgentVersion(models.Model):
    """The instructions and configuration as they were at each version (runs point here)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    instructions = models.TextField()
    config = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "version"], name="one_row_per_agent_version")]


class RunStatus(models.TextChoices):
    CREATED = "created"
    QUEUED = "queued"
    PLANNING = "planning"
    WAITING_FOR_MODEL = "waiting_for_model"
    WAITING_FOR_TOOL = "waiting_for_tool"
    WAITING_FOR_HUMAN = "waiting_for_human"
    RUNNING_TOOL = "running_tool"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
# A worker may take a step of a run in these (the lease claim and the sweeper read them).
RUNNABLE = (RunStatus.QUEUED, RunStatus.PLANNING, RunStatus.WAITING_FOR_MODEL, RunStatus.RUNNING_TOOL,
            RunStatus.WAITING_FOR_TOOL)


def run_number_next(tenant_id: int) -> int:
    """The tenant's next run number. Runs are numbered per tenant (#1, #2 … in its pages and URLs), so a
    tenant's numbers say nothing of other tenants' runs. In the caller's transaction, under an advisory
    lock per tenant held until it ends: two runs started at once get consecutive numbers, never the same."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RUN_NUMBER_LOCK, tenant_id])
        cursor.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM agents_run WHERE tenant_id = %s", [tenant_id])
        return cursor.fetchone()[0]


RUN_NUMBER_LOCK = 0x52554E  # the advisory lock's first key ("RUN"); the tenant id is the second


class Run(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()  # per tenant, from 1: how pages, URLs, sockets and the API name a run
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="runs")
    agent_version = models.PositiveIntegerField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    goal = models.TextField()
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.CREATED)
    step = models.PositiveIntegerField(default=0)  # steps completed
    # The lease: one owner at a time; the fencing token rises with every claim so a
    # worker that lost its lease cannot commit over the new owner.
    lease_owner = models.CharField(max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    fence = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    unpriced_calls = models.PositiveIntegerField(default=0)  # model calls without a known price: not in cost_usd
    last_action = models.CharField(max_length=300, blank=True)
    next_action = models.CharField(max_length=300, blank=True)
    terminal_reason = models.CharField(max_length=300, blank=True)
    answer = models.TextField(blank=True)
    event_seq = models.PositiveIntegerField(default=0)  # last RunEvent.seq written
    # Rises with every write of the row (run_store.run_write, run_instruction_add): a step that did not lock the
    # row writes only if it is still the version the step's turn last committed (agents/run_store.py).
    version = models.PositiveBigIntegerField(default=0)
    inbox = models.JSONField(default=list, blank=True)  # instructions added mid-run, for the next step
    pause_requested = models.BooleanField(default=False)
    cancel_requested = models.BooleanField(default=False)
    control_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")  # who paused/cancelled last
    control_at = models.DateTimeField(null=True, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # SHA-256 of what defined the run (agent, goal) when it came with a key: the key again with another body is refused.
    idempotency_fingerprint = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="run_idempotency_key_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "number"], name="run_number_per_tenant"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="run_tenant_recent"),
            # Only the runnable runs, on a column a step leaves as it found it: the run row's update each step
            # touches no indexed column, so Postgres can make it a HOT update (no index entries, less WAL).
            models.Index(fields=["status"], name="run_sweep", condition=models.Q(status__in=RUNNABLE)),
        ]

    def __str__(self) -> str:
        return f"Run #{self.number} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


class RunEvent(models.Model):
    """Append-only; `seq` is dense per run (1, 2, 3 …), written with the change it describes."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)  # its unique constraint leads with run
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="dense_event_seq_per_run")]
        ordering = ["run", "seq"]


class JSONText(models.JSONField):
    """JSON kept as the text it was written (Postgres ``json``, not ``jsonb``): the bytes the runtime
    serialized, key order included, and no binary form's overhead, for values that are read back
    whole and never searched inside."""

    def db_type(self, connection):
        return "json"

    def from_db_value(self, value, expression, connection):
        return value if value is None or not isinstance(value, str) else super().from_db_value(value, expression, connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        return None if value is None else Json(value, dumps=_compact_json)


def _compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


class ConversationMessage(models.Model):
    """The run's conversation, append-only: a row per message (user, assistant, tool), written in the
    step's transaction by the lease holder (the run locked, or its write checked by ``Run.version``), so
    every committed row is part of the run's history. A
    step writes its new messages only, so its cost does not grow with the run. Keyed by (run, seq) and
    kept as compact JSON text: a row is little more than the message."""

    pk = models.CompositePrimaryKey("run_id", "seq")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="messages", db_index=False)  # the key leads with run
    seq = models.PositiveIntegerField()
    step = models.PositiveIntegerField()
    message = JSONText()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]


class Checkpoint(models.Model):
    """The run's small state after a step (``engine.RunState``: the pending call), a row for a step that
    changed it (most steps do not: a call asked for and run in one transaction leaves the state as it
    was), upserted when a step writes it twice; the latest is the run's state."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints", db_index=False)  # its unique constraint leads with run
    step = models.PositiveIntegerField()
    state = models.JSONField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="one_checkpoint_per_step")]


class PlanStep(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="plan_steps", db_index=False)  # its unique constraint leads with run
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=16, default="pending")  # pending, active, done, skipped

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="plan_position_per_run")]


class ModelCall(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_calls", db_index=False)  # its unique constraint leads with run
    step = models.PositiveIntegerField()
    attempt = models.PositiveSmallIntegerField(default=1)
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    price = models.JSONField(default=dict)  # the price used, kept with the row
    status = models.CharField(max_length=16)  # ok, error
    error = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "step", "attempt"], name="one_model_call_per_attempt")]


class ToolInvocation(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tool_invocations")
    step = models.PositiveIntegerField()
    call_id = models.CharField(max_length=100)
    tool = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=200)  # "<run>:<step>:<call>"
    status = models.CharField(max_length=16, default="running")  # running, ok, error
    result = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tool", "idempotency_key"], name="tool_idempotency_key")]


class ToolSetting(models.Model):
    """A tenant's own setting for a tool: its risk raised above the tool's declared risk (never below it).
    Read by the step through agents.tool_settings, kept per process until the tenant's config_version rises."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="tool_settings")
    tool = models.CharField(max_length=200)
    risk = models.PositiveSmallIntegerField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    changed_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "tool"], name="one_tool_setting_per_tenant")]
