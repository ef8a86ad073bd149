"""The runtime's human-review interface (agents.hooks.HumanReview), implemented by approvals and
registered in ApprovalsConfig.ready(): the runtime asks through it and never imports approvals."""

from __future__ import annotations

from agents.hooks import Need, Review
from approvals.models import OPEN, ApprovalRequest
from approvals.policy import Requirement, requirement
from approvals.selectors import call_review, policy_rules
from approvals.services import (
    approval_invocation_link,
    approval_request_create,
    approvals_cancel_for_run,
    human_step_requirement,
)
from console.models import TenantConfigCache


class ApprovalsReview:
    """Keeps each tenant's rules while its configuration version stays the same: the step reads the
    version with the run's lock, or checks it at its write (a reply's unlocked transaction), and a policy
    saved or deleted raises it in the same transaction, so a step never commits a decision on rules older
    than its own transaction."""

    def __init__(self):
        self._rules = TenantConfigCache(lambda tenant_id: policy_rules(tenant=tenant_id))  # its enabled rules

    def _tenant_rules(self, run) -> list:
        return self._rules.get(run.tenant_id, getattr(run.tenant, "config_version", None))

    def call_need(self, *, run, tool: str, risk: int, arguments: dict) -> Need:
        return _need(requirement(self._tenant_rules(run), agent_id=run.agent_id, tool=tool, risk=risk,
                                 arguments=arguments))

    def human_step_need(self, *, run, kind: str) -> Need:
        return _need(human_step_requirement(run=run, kind=kind))

    def request(self, *, run, step: int, call, risk: int, need: Need, kind: str, arguments: dict | None) -> None:
        approval_request_create(run=run, step=step, call=call, risk=risk, rule=need.rule.rule, kind=kind,
                                arguments=arguments)

    def review_for_call(self, *, run, step: int, call_id: str) -> Review | None:
        found = call_review(tenant_id=run.tenant_id, run_id=run.pk, step=step, call_id=call_id)
        if found is None:
            return None
        approved = found["approved_arguments"]
        return Review(id=found["id"], kind=found["kind"], status=found["status"], decided_by=found["decided_by"] or "",
                      note=found["decision_note"], answer=found["answer"],
                      arguments_to_run=approved if approved is not None else found["arguments"],
                      edited=approved is not None)

    def invocation_ran(self, *, run, review_id: int, invocation) -> None:
        approval_invocation_link(run=run, approval_id=review_id, invocation=invocation)

    def cancel_open(self, *, run) -> None:
        approvals_cancel_for_run(run=run)

    def waits(self, *, run) -> bool:
        """Whether a request of the run is still open (pending or escalated). A run has one at most:
        it is made with the run's pending call and closed by the decision, or cancelled with the run."""
        return ApprovalRequest.objects.for_tenant(run.tenant_id).filter(run=run, status__in=OPEN).exists()


def _need(required: Requirement) -> Need:
    return Need(needs_approval=required.needs_approval, rule=required, describe=required.rule.describe())

