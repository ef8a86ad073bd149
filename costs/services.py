"""Changing costs: rollups rebuilt from the ledger, budgets and the tenant's cost settings."""

from __future__ import annotations

from django.db import connection, transaction

from console.models import tenant_config_changed
from console.services import audit_record
from costs.ledger import rollup_upsert
from costs.models import Budget, CostSettings, HourlyCost


def rollups_rebuild(tenant) -> int:
    """The tenant's hourly rollups computed again from its current ledger rows, in one transaction (the
    tenant's ledger writes wait for it). Returns the number of hourly rows."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # A writer still open holds its rollup rows' locks: the delete waits for it, and the rebuild's
            # read (a later statement) sees its ledger rows; a later writer adds onto the rebuilt rows.
            HourlyCost.objects.for_tenant(tenant).delete()
            cursor.execute(rollup_upsert("SELECT *, 1 AS sign FROM costs_ledger WHERE tenant_id = %s AND current"),
                           [tenant.pk])
        return HourlyCost.objects.for_tenant(tenant).count()


def budget_save(*, tenant, actor, budget: Budget) -> Budget:
    """Create or change a budget (validated by the caller); running steps see it at their next model call."""
    with transaction.atomic():
        created = budget.pk is None
        budget.tenant = tenant
        if created:
            budget.created_by = actor
        budget.save()
        tenant_config_changed(tenant)
        audit_record(tenant=tenant, actor=actor, verb="budget.created" if created else "budget.changed",
                     target=f"budget {budget.name}", data=budget_data(budget))
    return budget


def budget_delete(*, tenant, actor, budget: Budget) -> None:
    with transaction.atomic():
        data = budget_data(budget)
        budget.delete()
        tenant_config_changed(tenant)
        audit_record(tenant=tenant, actor=actor, verb="budget.deleted", target=f"budget {data['name']}", data=data)


def budget_data(budget: Budget) -> dict:
    return {"id": budget.pk, "name": budget.name, "scope": budget.scope, "agent": budget.agent_id, "user": budget.user_id,
            "period": budget.period, "limit_usd": None if budget.limit_usd is None else str(budget.limit_usd),
            "limit_tokens": budget.limit_tokens, "thresholds": budget.thresholds, "action": budget.action}


def cost_timezone_set(*, tenant, actor, zone: str) -> None:
    with transaction.atomic():
        CostSettings.objects.update_or_create(tenant=tenant, defaults={"timezone": zone})
        tenant_config_changed(tenant)
        audit_record(tenant=tenant, actor=actor, verb="costs.timezone", data={"timezone": zone})
