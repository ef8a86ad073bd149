"""A step reads the tenant's rules only when they changed (the tenant's configuration version comes
with the run's lock), and a rule saved while a run goes applies at its very next step."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.services import run_advance, run_start
from approvals.models import ApprovalPolicy
from console.models import tenant_config_changed
from tests.factories import make_looper


def _policy_reads(queries) -> int:
    return sum("approvals_approvalpolicy" in q["sql"] for q in queries.captured_queries)


def test_the_rules_are_read_again_only_when_the_tenants_configuration_changes(cast, settings):
    settings.RUN_TURN_SECONDS = 0  # a step per call
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 5 times", requested_by=cast.member)
    run_advance(run_id=run.pk, worker="w1")
    with CaptureQueriesContext(connection) as unchanged:
        assert run_advance(run_id=run.pk, worker="w1") == "tool_done"
    assert _policy_reads(unchanged) == 0

    ApprovalPolicy.objects.create(tenant=cast.acme, name="every noop", tool="noop", min_risk=0, required_approvals=1)
    tenant_config_changed(cast.acme)  # as the policies page's save does, in the same transaction
    with CaptureQueriesContext(connection) as changed:
        assert run_advance(run_id=run.pk, worker="w1") == "waiting_for_human"
    assert _policy_reads(changed) == 1
    run.refresh_from_db()
    assert run.approval_requests.get().tool == "noop"


def test_another_tenants_change_does_not_apply_here(cast, settings):
    settings.RUN_TURN_SECONDS = 0
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 3 times", requested_by=cast.member)
    run_advance(run_id=run.pk, worker="w1")
    ApprovalPolicy.objects.create(tenant=cast.globex, name="every noop", tool="noop", min_risk=0, required_approvals=1)
    tenant_config_changed(cast.globex)
    assert run_advance(run_id=run.pk, worker="w1") == "tool_done"


def test_deleting_a_policy_raises_the_tenants_configuration_version(cast):
    from approvals.services import approval_policy_delete
    from console.models import Tenant

    policy = ApprovalPolicy.objects.create(tenant=cast.acme, name="p", min_risk=3, required_approvals=1)
    before = Tenant.objects.get(pk=cast.acme.pk).config_version
    approval_policy_delete(policy=policy, actor=cast.admin)
    assert Tenant.objects.get(pk=cast.acme.pk).config_version == before + 1
