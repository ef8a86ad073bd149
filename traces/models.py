"""The runs' traces as stored: one row per finished span (the runtime produces them, agents.tracing)."""

from __future__ import annotations

from django.db import models

from console.models import TenantScopedQuerySet


class Span(models.Model):
    """Spans stored by the batching exporter (traces.exporter), for the trace timeline."""

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="spans", db_index=False)  # span_run_timeline leads with run
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16)  # run, step, model, tool, other
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    status = models.CharField(max_length=16, default="unset")  # unset, ok, error
    attributes = models.JSONField(default=dict)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trace_id", "span_id"], name="span_unique")]
        indexes = [models.Index(fields=["run", "started_at"], name="span_run_timeline")]
