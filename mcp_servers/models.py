"""A tenant's MCP servers and the tools they offer."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.models import TenantScopedQuerySet

UNCLASSIFIED_RISK = 3  # a discovered tool's risk until an admin classifies it


class McpServer(models.Model):
    class Transport(models.TextChoices):
        HTTP = "http", "Streamable HTTP (a URL)"
        STDIO = "stdio", "stdio (from the operator's list)"

    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE, related_name="mcp_servers")
    name = models.SlugField(max_length=40)  # in its tools' names: mcp:<name>.<tool>
    transport = models.CharField(max_length=8, choices=Transport.choices, default=Transport.HTTP)
    url = models.URLField(max_length=500, blank=True)
    stdio_name = models.CharField(max_length=60, blank=True)  # a key of settings.MCP_STDIO_SERVERS
    secret = models.TextField(blank=True)  # Fernet token of {"headers": {...}} (console.secrets_box); never shown
    secret_hint = models.CharField(max_length=120, blank=True)  # which headers are set, never their values
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=16, default="new")  # new, ok, down, changed
    last_error = models.CharField(max_length=300, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    offered = models.JSONField(null=True, blank=True)  # a changed tool list waiting for an admin to accept it
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="mcp_server_name_per_tenant")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class McpTool(models.Model):
    tenant = models.ForeignKey("console.Tenant", on_delete=models.CASCADE)
    server = models.ForeignKey(McpServer, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=200)  # as the server names it
    description = models.TextField(blank=True)
    input_schema = models.JSONField(default=dict)
    hints = models.JSONField(default=dict)  # the server's annotations: readOnlyHint, destructiveHint, …
    risk = models.PositiveSmallIntegerField(null=True, blank=True)  # None: not classified yet (UNCLASSIFIED_RISK)
    classified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    classified_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="mcp_tool_name_per_server")]
        ordering = ["name"]

    @property
    def full_name(self) -> str:
        return f"mcp:{self.server.name}.{self.name}"

    @property
    def effective_risk(self) -> int:
        return UNCLASSIFIED_RISK if self.risk is None else self.risk

    @property
    def suggested_risk(self) -> int:
        """What the server's hints suggest: read-only 0, destructive 4, otherwise an external side effect (3)."""
        if self.hints.get("readOnlyHint"):
            return 0
        if self.hints.get("destructiveHint"):
            return 4
        return 3
