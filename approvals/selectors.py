"""Approval reads."""

from __future__ import annotations

from approvals.models import ApprovalPolicy
from approvals.policy import Rule


def policy_rules(*, tenant) -> list[Rule]:
    return [
        Rule(id=p.id, name=p.name, agent_id=p.agent_id, tool=p.tool, min_risk=p.min_risk,
             required_approvals=p.required_approvals, condition=p.condition or {}, allow_self_approval=p.allow_self_approval,
             sla_minutes=p.sla_minutes, expire_minutes=p.expire_minutes, expiry_outcome=p.expiry_outcome,
             escalate_to_role=p.escalate_to_role)
        for p in ApprovalPolicy.objects.for_tenant(tenant).filter(enabled=True)
    ]
