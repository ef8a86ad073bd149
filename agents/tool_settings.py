"""A tool's risk in a tenant: its declared risk, or higher where an admin raised it (agents.ToolSetting).
The step asks ``tool_risk`` for every tool it offers; a process keeps a tenant's settings until the tenant's
config_version (read with the run's lock) rises, so this costs no query on most steps and never decides on
older settings. Writes (``tool_risk_set``) are audited and raise the config_version in their transaction."""

from __future__ import annotations

from django.db import transaction

from agents.models import ToolSetting
from agents.tools.registry import Tool
from console.models import TenantConfigCache, tenant_config_changed
from console.services import audit_record

MAX_RISK = 4
_raised = TenantConfigCache(lambda tenant_id: dict(ToolSetting.objects.for_tenant(tenant_id).values_list("tool", "risk")))


class RiskRefused(Exception):
    """A risk below the tool's declared minimum, or out of 0–4."""


def tenant_tool_risks(tenant) -> dict[str, int]:
    """The tenant's raised risks by tool name, as of its config_version."""
    return _raised.get(tenant.pk, getattr(tenant, "config_version", None))


def tool_risk(tenant, spec: Tool) -> int:
    return max(spec.risk, tenant_tool_risks(tenant).get(spec.name, spec.risk))


def tool_risk_set(*, tenant, spec: Tool, risk: int, actor) -> int:
    """Set the tool's risk in the tenant (its declared risk removes the tenant's own); audited."""
    if not isinstance(risk, int) or not 0 <= risk <= MAX_RISK:
        raise RiskRefused(f"Risk is a level from 0 to {MAX_RISK}.")
    if risk < spec.risk:
        raise RiskRefused(f"{spec.name} is declared at risk {spec.risk}; it can be raised, never set below that.")
    with transaction.atomic():
        current = ToolSetting.objects.for_tenant(tenant).select_for_update().filter(tool=spec.name).first()
        before = current.risk if current else spec.risk
        if before == risk:
            return risk
        if risk == spec.risk:
            current.delete()
        else:
            ToolSetting.objects.update_or_create(tenant=tenant, tool=spec.name,
                                                 defaults={"risk": risk, "changed_by": actor})
        tenant_config_changed(tenant)
        _raised.forget(tenant.pk)  # this process's copy: the caller's tenant row still has the old version
        audit_record(tenant=tenant, actor=actor, verb="tool.risk_changed", target=spec.name,
                     data={"from": before, "to": risk, "declared": spec.risk})
    return risk
