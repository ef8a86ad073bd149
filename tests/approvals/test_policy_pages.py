"""The approval policy admin page: admins create, change and delete rules; they take effect; bad input is explained."""

from django.urls import reverse

from approvals.models import ApprovalPolicy
from console.models import AuditEvent

VALID = {"name": "Large invoices", "tool": "billing.create_invoice", "min_risk": 0, "required_approvals": 2,
         "sla_minutes": 30, "expire_minutes": 120, "expiry_outcome": "reject", "escalate_to_role": "admin",
         "enabled": "on", "condition_argument": "amount_usd", "condition_op": "gt", "condition_value": "1000"}


def test_an_admin_adds_a_policy_and_sees_it_described(cast, client_for):
    client = client_for(cast.admin)
    version = cast.acme.config_version
    response = client.post(reverse("approval_policies", args=["acme"]), VALID)
    assert response.status_code == 302
    cast.acme.refresh_from_db()
    assert cast.acme.config_version == version + 1  # running steps read the rules afresh
    policy = ApprovalPolicy.objects.get(tenant=cast.acme)
    assert policy.condition == {"argument": "amount_usd", "op": "gt", "value": 1000.0}
    page = client.get(reverse("approval_policies", args=["acme"])).content.decode()
    assert "tool billing.create_invoice, risk ≥ 0, amount_usd &gt; 1000.0: 2 distinct reviewers" in page
    assert AuditEvent.objects.filter(tenant=cast.acme, verb="approval_policy.created").exists()


def test_bad_rules_are_explained_not_saved(cast, client_for):
    client = client_for(cast.admin)
    bad = client.post(reverse("approval_policies", args=["acme"]),
                      {**VALID, "condition_value": "a lot", "min_risk": 9, "expire_minutes": 5})
    page = bad.content.decode()
    assert bad.status_code == 422 and "Compare with a number." in page and "Risk levels go from 0 to 4." in page
    assert "Expiry comes after the due time" in page
    assert not ApprovalPolicy.objects.exists()


def test_change_and_delete(cast, client_for):
    client = client_for(cast.admin)
    client.post(reverse("approval_policies", args=["acme"]), VALID)
    policy = ApprovalPolicy.objects.get()
    url = reverse("approval_policy", args=["acme", policy.pk])
    assert client.post(url, {**VALID, "required_approvals": 3}).status_code == 302
    policy.refresh_from_db()
    assert policy.required_approvals == 3
    assert client.post(url, {"delete": "1"}).status_code == 302
    assert not ApprovalPolicy.objects.exists()


def test_outsiders_get_404_and_non_admins_403(cast, client_for):
    client_for(cast.admin).post(reverse("approval_policies", args=["acme"]), VALID)
    policy = ApprovalPolicy.objects.get()
    for url in (reverse("approval_policies", args=["acme"]), reverse("approval_policy", args=["acme", policy.pk])):
        assert client_for(cast.outsider).post(url, {"delete": "1"}).status_code == 404
        assert client_for(cast.reviewer).post(url, {"delete": "1"}).status_code == 403
    # sam is an admin in Globex: Acme's policy does not exist there, to read or to delete
    sam = client_for(cast.both)
    assert sam.get(reverse("approval_policy", args=["globex", policy.pk])).status_code == 404
    assert sam.post(reverse("approval_policy", args=["globex", policy.pk]), {"delete": "1"}).status_code == 404
    assert ApprovalPolicy.objects.filter(pk=policy.pk).exists()
    assert client_for(cast.admin).get(reverse("approval_policy", args=["acme", 99999])).status_code == 404


def test_an_admin_sets_who_decides_budget_extensions_from_the_form(cast, client_for):
    from approvals.models import ApprovalKind
    from approvals.services import human_step_requirement
    from tests.factories import make_looper

    client = client_for(cast.admin)
    form = client.get(reverse("approval_policies", args=["acme"])).content.decode()
    assert 'value="budget.extend"' in form
    response = client.post(reverse("approval_policies", args=["acme"]), {
        **VALID, "name": "Budget extensions by admins", "tool": "budget.extend", "sla_minutes": 15,
        "expire_minutes": 45, "escalate_to_role": "admin", "condition_op": "", "required_approvals": 1})
    assert response.status_code == 302
    policy = ApprovalPolicy.objects.get(tenant=cast.acme)
    assert policy.tool == "budget.extend"
    page = client.get(reverse("approval_policies", args=["acme"])).content.decode()
    assert "budget extensions: approved by one reviewer, not by the run&#x27;s requester, due within 15 min" in page
    from agents.services import run_start

    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member)
    need = human_step_requirement(run=run, kind=ApprovalKind.BUDGET)  # what a budget's ask uses
    assert need.rule.name == "Budget extensions by admins" and need.rule.sla_minutes == 15
