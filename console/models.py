"""Tenancy: tenants, memberships with roles, the audit log, tenant API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    REVIEWER = "reviewer", "Reviewer"
    FINANCE = "finance", "Finance"
    MEMBER = "member", "Member"


class TenantScopedQuerySet(models.QuerySet):
    """Every tenant-owned model's manager: the one way to read tenant data."""

    def for_tenant(self, tenant: "Tenant"):
        return self.filter(tenant=tenant)


class Tenant(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Rises with every change of the tenant's configuration that steps read (approval policies, …):
    # read with the run's lock each step, it lets a process keep that configuration until it changes.
    config_version = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def tenant_config_changed(tenant) -> None:
    """In the transaction of the change: the steps of this tenant's runs read the configuration afresh."""
    Tenant.objects.filter(pk=getattr(tenant, "pk", tenant)).update(config_version=models.F("config_version") + 1)


class TenantConfigCache:
    """A tenant's settings kept in this process until its configuration version rises: the step reads the
    version with the run's lock, and every change of the settings raises it in its own transaction
    (tenant_config_changed), so a step never decides on settings older than its transaction. ``load(tenant_id)``
    reads them; without a known version they are read afresh and not kept."""

    def __init__(self, load):
        self._load = load
        self._kept: dict[int, tuple[int, object]] = {}  # tenant id → (config version, settings)

    def get(self, tenant_id: int, version: int | None):
        kept = self._kept.get(tenant_id)
        if version is not None and kept is not None and kept[0] == version:
            return kept[1]
        value = self._load(tenant_id)
        if version is not None:
            self._kept[tenant_id] = (version, value)
        return value

    def forget(self, tenant_id: int) -> None:
        """After a change made in this process (its caller's tenant row may still hold the old version)."""
        self._kept.pop(tenant_id, None)


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_user_and_tenant")]
        ordering = ["tenant__name"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} as {self.role}"


class AuditEvent(models.Model):
    """Who did what to what, in which tenant. Never holds secrets or deleted content."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True)  # survives the actor's deletion
    verb = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=False)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-at", "-id"], name="audit_tenant_recent"),
            models.Index(fields=["tenant", "verb", "-at"], name="audit_tenant_verb"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.verb} {self.target}"


class Scope(models.TextChoices):
    """What an API token may do, chosen when it is made. Each API router (or operation) names the scope it
    needs for reads and for writes (console.api_auth.token_scopes); a token without it gets 403 naming it."""

    RUNS_READ = "runs:read", "Read runs, their events, agents and approvals"
    RUNS_WRITE = "runs:write", "Start, pause, resume, cancel and instruct runs"
    APPROVALS_WRITE = "approvals:write", "Decide and assign approval requests"
    MEMORY_WRITE = "memory:write", "Change and delete memories"
    COSTS_READ = "costs:read", "Read costs and export them"
    ADMIN = "admin", "Manage agents, tools, members, invitations, tokens and webhooks"


ALL_SCOPES = [scope.value for scope in Scope]


def all_scopes() -> list[str]:
    return list(ALL_SCOPES)


class ApiToken(models.Model):
    """A tenant API token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)  # shown in lists so people can tell tokens apart
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(default=all_scopes)  # a list of Scope values

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Invitation(models.Model):
    """An admin's invitation to join the tenant with a role: a link with a single-use token that expires.
    Only a SHA-256 of the token is stored; the link is emailed (and shown to the admin once)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} as {self.role}"

    def state(self, now) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        return "expired" if self.expires_at <= now else "open"
