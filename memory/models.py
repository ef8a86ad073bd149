"""What agents remember: records scoped to a user, a team, the tenant or an agent, their versions, which
step used which version, the teams that share memories, and each tenant's memory policy.

A record's content lives in two places only: the record and its versions (and, until the pipeline has
dealt with it, the proposal). Deleting a record erases all of them (memory.services.memory_delete);
the run's transcript and traces keep memory ids, never memory text.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from console.models import TenantScopedQuerySet

DIMENSIONS = 256  # every embedder's vectors are stored at this size
TEXT_SEARCH_CONFIG = "english"
MAX_CONTENT_CHARS = 2000


class Scope(models.TextChoices):
    USER = "user", "Me"
    TEAM = "team", "Team"
    TENANT = "tenant", "Tenant"
    AGENT = "agent", "Agent"


class MemoryType(models.TextChoices):
    PREFERENCE = "preference", "Preference"
    FACT = "fact", "Fact"
    EPISODE = "episode", "Episode"
    PROCEDURE = "procedure", "Procedure"


class Status(models.TextChoices):
    PROPOSED = "proposed", "To confirm"
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    EXPIRED = "expired", "Expired"
    REFUSED = "refused", "Refused"
    DELETED = "deleted", "Deleted"


class Team(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="team_name_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMember(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memory_teams")

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]
        indexes = [models.Index(fields=["tenant", "user"], name="memory_team_member_user")]


class MemoryRecord(models.Model):
    """One thing an agent remembers. Exactly one owner column is set by scope: ``user`` (scope user),
    ``team`` (team), ``agent`` (agent); a tenant record has none. ``subject`` says what it is about
    ("email format", "champion of ACME-042"): records with the same scope, owner, type and subject are
    the same topic, so a new proposal on it merges (same meaning) or supersedes (different content)."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="memories")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="memories")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="memories")
    subject = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=12, choices=MemoryType.choices)
    content = models.TextField(blank=True)
    embedding = VectorField(dimensions=DIMENSIONS, null=True, blank=True)
    embedder = models.CharField(max_length=100, blank=True)
    search = models.GeneratedField(
        expression=SearchVector("subject", "content", config=TEXT_SEARCH_CONFIG),
        output_field=SearchVectorField(), db_persist=True)
    confidence = models.FloatField(default=0.5)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    pinned = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    source_run = models.ForeignKey("agents.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_step = models.PositiveIntegerField(null=True, blank=True)
    source_event = models.PositiveIntegerField(null=True, blank=True)  # the run event's seq
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-pinned", "-updated_at"]
        indexes = [
            # The ACL filter: a tenant's live records by scope and owner.
            models.Index(fields=["tenant", "status", "scope", "user"], name="memory_acl_user"),
            models.Index(fields=["tenant", "status", "scope", "team"], name="memory_acl_team"),
            models.Index(fields=["tenant", "status", "scope", "agent"], name="memory_acl_agent"),
            models.Index(fields=["tenant", "status", "expires_at"], name="memory_expiry"),
            HnswIndex(name="memory_embedding_hnsw", fields=["embedding"], m=16, ef_construction=64,
                      opclasses=["vector_cosine_ops"]),
            GinIndex(fields=["search"], name="memory_search_gin"),
        ]
        constraints = [
            models.CheckConstraint(name="memory_owner_matches_scope", condition=(
                models.Q(scope="user", user__isnull=False, team__isnull=True, agent__isnull=True)
                | models.Q(scope="team", team__isnull=False, user__isnull=True, agent__isnull=True)
                | models.Q(scope="agent", agent__isnull=False, user__isnull=True, team__isnull=True)
                | models.Q(scope="tenant", user__isnull=True, team__isnull=True, agent__isnull=True))),
        ]

    def __str__(self) -> str:
        return f"memory #{self.pk}"


class MemoryVersion(models.Model):
    """Every change of a record: what it said, who changed it and why."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    record = models.ForeignKey(MemoryRecord, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content = models.TextField(blank=True)
    type = models.CharField(max_length=12, choices=MemoryType.choices)
    confidence = models.FloatField()
    status = models.CharField(max_length=12, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    author_label = models.CharField(max_length=150, blank=True)
    source_run = models.ForeignKey("agents.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_step = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["record", "number"]
        constraints = [models.UniqueConstraint(fields=["record", "number"], name="memory_version_number")]


class MemoryUse(models.Model):
    """A step used a record (at a version) in its context: written in the step's transaction."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="+")
    step = models.PositiveIntegerField()
    record = models.ForeignKey(MemoryRecord, on_delete=models.CASCADE, related_name="uses")
    version = models.PositiveIntegerField()
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()
    at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["run", "step", "rank"]
        indexes = [models.Index(fields=["run", "step"], name="memory_use_run_step"),
                   models.Index(fields=["record", "at"], name="memory_use_record")]


class ProposalOutcome(models.TextChoices):
    PENDING = "pending", "Waiting for the pipeline"
    STORED = "stored", "Stored"
    MERGED = "merged", "Merged"
    SUPERSEDED = "superseded", "Stored, superseding an older record"
    TO_CONFIRM = "to_confirm", "Waiting for confirmation"
    REFUSED = "refused", "Refused"


class MemoryProposal(models.Model):
    """What an agent asked to remember (``memory.remember``), until the pipeline has dealt with it; then
    its outcome and the record it became or joined. Its content is erased with that record's."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    run = models.ForeignKey("agents.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    step = models.PositiveIntegerField(null=True, blank=True)
    call_id = models.CharField(max_length=100, blank=True)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    subject = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=12)
    content = models.TextField(blank=True)
    confidence = models.FloatField(default=0.5)
    outcome = models.CharField(max_length=12, choices=ProposalOutcome.choices, default=ProposalOutcome.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    # with a classifier model configured, why it was not asked about this proposal (the budget that stopped it)
    classifier_not_asked = models.CharField(max_length=300, blank=True)
    record = models.ForeignKey(MemoryRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="proposals")
    other = models.ForeignKey(MemoryRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "step", "call_id"], name="one_proposal_per_call")]


class MemoryPolicy(models.Model):
    """A tenant's rules for what agents may remember: the types and scopes that wait for the person's
    confirmation, how long each type is kept, and the agents that may not capture at all."""

    tenant = models.OneToOneField("console.Tenant", on_delete=models.CASCADE, related_name="memory_policy")
    confirm_types = models.JSONField(default=list)  # e.g. ["preference"]
    confirm_scopes = models.JSONField(default=list)  # e.g. ["tenant", "team"]
    retention_days = models.JSONField(default=dict)  # type → days; absent: kept until deleted
    capture_off_agents = models.JSONField(default=list)  # agent ids
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()


class CaptureSetting(models.Model):
    """A person's "remember new things about me" switch (on unless they switch it off)."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    capture = models.BooleanField(default=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_capture_setting")]
