"""The cost ledger (one row per priced thing, attribution and price snapshot on the row), its hourly
rollups, budgets and the alerts they raised."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.models import Tenant, TenantScopedQuerySet

AMOUNT = {"max_digits": 20, "decimal_places": 10}


class CostKind(models.TextChoices):
    MODEL = "model", "Model call"
    EMBEDDING = "embedding", "Embedding call"
    TOOL = "tool", "Tool call"
    CLASSIFIER = "classifier", "Memory classifier call"  # memory's write pipeline asking its model about a proposal


# The kinds priced by tokens at a model's rates (repricing applies to them; a tool's cost is declared)
TOKEN_KINDS = (CostKind.MODEL, CostKind.EMBEDDING, CostKind.CLASSIFIER)


class LedgerEntry(models.Model):
    """One priced thing. Attribution is copied onto the row (ids, names), so the ledger reads without
    joins and outlives renames. ``source_key`` names the call ("model:<run>:<step>:<attempt>",
    "tool:<run>:<call id>", "classifier:<run>:<proposal>:<asking>:<attempt>"); with ``price_version`` it is unique,
    so a step (or a proposal's processing) taken again after a crash cannot write a call twice. Repricing
    writes version n+1 and marks the older one not current."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    at = models.DateTimeField()
    source_key = models.CharField(max_length=200)
    price_version = models.PositiveIntegerField(default=1)
    current = models.BooleanField(default=True)
    kind = models.CharField(max_length=16, choices=CostKind.choices)
    status = models.CharField(max_length=16)
    user_id = models.BigIntegerField(null=True)  # the run's requester (a token's owner for API runs)
    run_id = models.BigIntegerField(null=True)
    step = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    agent_id = models.BigIntegerField(null=True)
    agent_version = models.PositiveIntegerField(default=0)
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200, blank=True)
    tool = models.CharField(max_length=200, blank=True)
    input_tokens = models.BigIntegerField(default=0)  # cached included
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)  # reasoning included
    reasoning_tokens = models.BigIntegerField(default=0)
    amount_usd = models.DecimalField(**AMOUNT, null=True)  # NULL when unpriced: never a silent $0
    priced = models.BooleanField(default=True)
    simulated = models.BooleanField(default=False)
    cache_savings_usd = models.DecimalField(**AMOUNT, default=Decimal("0"))
    price_source = models.CharField(max_length=64, blank=True)  # "genai-prices", "declared by the tool", a price rule
    price_source_version = models.CharField(max_length=32, blank=True)
    rates = models.JSONField(default=dict, blank=True)  # USD per million tokens, by unit
    tier = models.CharField(max_length=100, blank=True)
    price = models.JSONField(default=dict, blank=True)  # the whole snapshot as priced

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "costs_ledger"
        indexes = [models.Index(fields=["tenant", "at", "id"], name="costs_ledger_tenant_at"),
                   models.Index(fields=["run_id", "at"], name="costs_ledger_run")]
        constraints = [models.UniqueConstraint(fields=["source_key", "price_version"], name="costs_ledger_once")]


ROLLUP_DIMENSIONS = ("agent_id", "agent_version", "user_id", "provider", "model", "tool", "kind", "simulated")


class HourlyCost(models.Model):
    """The ledger's current rows summed per hour (UTC) and attribution; kept in the ledger write's own
    statement (an upsert), so it always equals the ledger. Absent attribution is 0 or ''."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    hour = models.DateTimeField()
    agent_id = models.BigIntegerField(default=0)
    agent_version = models.PositiveIntegerField(default=0)
    user_id = models.BigIntegerField(default=0)
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200, blank=True)
    tool = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16)
    simulated = models.BooleanField(default=False)
    calls = models.BigIntegerField(default=0)
    unpriced_calls = models.BigIntegerField(default=0)
    retry_calls = models.BigIntegerField(default=0)
    amount_usd = models.DecimalField(**AMOUNT, default=Decimal("0"))
    retry_amount_usd = models.DecimalField(**AMOUNT, default=Decimal("0"))
    cache_savings_usd = models.DecimalField(**AMOUNT, default=Decimal("0"))
    input_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "costs_hourly"
        constraints = [models.UniqueConstraint(fields=["tenant", "hour", *ROLLUP_DIMENSIONS], name="costs_hourly_key")]


class CostSettings(models.Model):
    """A tenant's cost settings: the timezone its budget periods (days, months) are counted in."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="cost_settings")
    timezone = models.CharField(max_length=64, default="UTC")

    objects = TenantScopedQuerySet.as_manager()


class BudgetScope(models.TextChoices):
    TENANT = "tenant", "The whole tenant"
    AGENT = "agent", "One agent"
    USER = "user", "One person's runs"
    RUN = "run", "Each run"


class BudgetPeriod(models.TextChoices):
    MONTH = "month", "Month"
    DAY = "day", "Day"


class BudgetAction(models.TextChoices):
    STOP = "stop", "Stop the run"
    ASK = "ask", "Ask a person to continue"
    ALERT = "alert", "Alert only"


class Budget(models.Model):
    """A limit in USD and/or tokens on a scope's spend per period (a run budget: per run). Thresholds
    (percent) alert once per period; at 100% the action applies before the next model call."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=BudgetScope.choices, default=BudgetScope.TENANT)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True)
    period = models.CharField(max_length=16, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    limit_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    limit_tokens = models.BigIntegerField(null=True, blank=True)
    thresholds = models.JSONField(default=list)  # e.g. [50, 80, 100]
    action = models.CharField(max_length=16, choices=BudgetAction.choices, default=BudgetAction.STOP)
    # What "ask a person to continue" asks for (the approver may change it); unset: 20% of the limit.
    extension_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    extension_tokens = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]


class BudgetAlert(models.Model):
    """A threshold a budget crossed, once per period (``period_key``: "2026-11", "2026-11-28", "run:42")."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_key = models.CharField(max_length=32)
    threshold = models.PositiveIntegerField()
    spent_usd = models.DecimalField(**AMOUNT, default=Decimal("0"))
    spent_tokens = models.BigIntegerField(default=0)
    run_id = models.BigIntegerField(null=True)
    at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)  # claimed by the task that emails it (sent once)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["budget", "period_key", "threshold"], name="costs_alert_once")]


class BudgetExtension(models.Model):
    """More of a budget granted to one run by a person (an approved request of kind budget), for the
    budget's current period (a run budget: for the run). The budget's gate lets that run spend up to the
    limit plus its extensions; other runs are held at the limit. ``request_key`` is the request's key:
    a step taken again after a crash cannot grant it twice."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="extensions")
    run_id = models.BigIntegerField()
    period_key = models.CharField(max_length=32)
    request_key = models.CharField(max_length=100)
    usd = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    tokens = models.BigIntegerField(default=0)
    approval_id = models.BigIntegerField(null=True)
    granted_by = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.UniqueConstraint(fields=["budget", "run_id", "request_key"], name="costs_extension_once")]
        indexes = [models.Index(fields=["budget", "run_id", "period_key"], name="costs_extension_run")]


class PriceRuleKind(models.TextChoices):
    RATE_CARD = "rate_card", "Rate card (USD per million tokens)"
    DISCOUNT = "discount", "Negotiated discount on the list price"


class PriceRule(models.Model):
    """A tenant's own price for a model from a date: a rate card, or a discount off the list price.
    Calls are priced at call time by the list price; a repricing job applies the rules to a range."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=PriceRuleKind.choices, default=PriceRuleKind.RATE_CARD)
    input_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    output_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    cache_read_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    cache_write_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    discount_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    effective_from = models.DateField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["provider", "model", "-effective_from", "-id"]


class RepricingJob(models.Model):
    """Repricing a range of the ledger with the tenant's rules: new priced versions of the rows whose price
    changes (the originals kept, not current), the rollups moved with them, and the diff per day and model.

    A worker holds the job by a lease: it claims it (``attempt`` + 1) and renews ``heartbeat_at`` with each
    chunk it commits, in that chunk's transaction, together with where it got to (``after_at``, ``after_id``)
    and the diff so far. A job whose worker died stays "running" only until its lease expires; then another
    claim continues it from its last committed chunk, and the dead worker's attempt can commit nothing more."""

    LEASE = timedelta(minutes=5)
    WAIT_WORTH_SAYING = timedelta(seconds=10)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    first_day = models.DateField()
    last_day = models.DateField()
    status = models.CharField(max_length=16, default="queued")  # queued, running, done, failed
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    diff = models.JSONField(default=list, blank=True)  # [{"day", "model", "old_usd", "new_usd", "difference_usd"}]
    error = models.CharField(max_length=300, blank=True)
    attempt = models.PositiveIntegerField(default=0)  # claims so far; a chunk commits only under the latest
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # the holder's last sign of life (claim or chunk)
    last_id = models.BigIntegerField(null=True, blank=True)  # the ledger's last id at the first claim: rows read
    after_at = models.DateTimeField(null=True, blank=True)  # the last committed chunk's last row (keyset)
    after_id = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(self.done * 100 / self.total)

    def lease_expired(self, now: datetime | None = None) -> bool:
        """Queued or running, with no sign of life (claim, chunk, or its creation) within the lease."""
        return (self.status in ("queued", "running")
                and (self.heartbeat_at or self.created_at) < (now or timezone.now()) - self.LEASE)

    def worker_stopped(self, now: datetime | None = None) -> bool:
        """Running, and its worker showed no sign of life within the lease: it died mid-job."""
        return self.status == "running" and self.lease_expired(now)

    def waiting_since(self, now: datetime | None = None) -> datetime | None:
        """When a queued job began waiting for a worker, once it has waited long enough to say so (the
        workers are busy, or its task was lost and the sweep sends it again); else None."""
        since = self.heartbeat_at or self.created_at
        if self.status != "queued" or since > (now or timezone.now()) - self.WAIT_WORTH_SAYING:
            return None
        return since


class Reconciliation(models.Model):
    """A provider's cost export compared with our ledger, per day (UTC, as providers bucket) and model."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    provider = models.CharField(max_length=32)
    filename = models.CharField(max_length=200, blank=True)
    lines = models.JSONField(default=list)  # [{"day", "model", "ours_usd", "theirs_usd", "difference_usd", "percent", "flagged"}]
    flagged = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
