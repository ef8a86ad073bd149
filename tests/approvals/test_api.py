"""The approvals API: a token decides as the person who made it; clear codes for every refusal."""

import pytest

from agents.models import Run
from approvals.services import DecisionRefused
from console.services import api_token_create
from demo.models import EmailMessage
from tests.factories import advance


@pytest.fixture
def pending(approval):
    return approval.run, approval


@pytest.fixture
def api(cast, client):
    tokens = {user: api_token_create(tenant=tenant, name=user.username, actor=user).secret
              for user, tenant in [(cast.reviewer, cast.acme), (cast.admin, cast.acme), (cast.member, cast.acme),
                                   (cast.outsider, cast.globex), (cast.both, cast.globex)]}

    def call(method, path, as_user=cast.reviewer, **kwargs):
        return getattr(client, method)("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {tokens[as_user]}",
                                       content_type="application/json", **kwargs)
    return call


def test_list_and_read_the_open_requests(cast, api, pending):
    _, approval = pending
    listed = api("get", "/approvals?sort=risk").json()
    assert [a["id"] for a in listed] == [approval.id] and listed[0]["tool"] == "email.send"
    assert api("get", "/approvals?status=approved").json() == []
    assert api("get", f"/approvals/{approval.id}").json()["required_approvals"] == 1


def test_edit_then_a_second_submit_is_a_conflict_naming_the_winner(cast, api, pending):
    run, approval = pending
    edited = {**approval.arguments, "to": "dana@acme.example"}
    response = api("post", f"/approvals/{approval.id}/decisions", data={"decision": "edit", "arguments": edited})
    assert response.status_code == 200 and response.json()["status"] == "approved"
    assert response.json()["approved_arguments"]["to"] == "dana@acme.example"
    again = api("post", f"/approvals/{approval.id}/decisions", as_user=cast.admin, data={"decision": "reject"})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert again.json()["message"].startswith("Already approved by rita at ")
    advance(run)
    assert EmailMessage.objects.get(sent_at__isnull=False).to == "dana@acme.example"


def test_the_same_client_key_twice_is_one_decision(api, pending):
    _, approval = pending
    body = {"decision": "approve", "client_key": "tab-1"}
    assert api("post", f"/approvals/{approval.id}/decisions", data=body).status_code == 200
    assert api("post", f"/approvals/{approval.id}/decisions", data=body).status_code == 200
    assert approval.decisions.count() == 1


def test_bad_input_gets_a_4xx_with_a_message(api, pending):
    _, approval = pending
    invalid = api("post", f"/approvals/{approval.id}/decisions", data={"decision": "edit", "arguments": {"to": "x"}})
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_arguments"
    assert "not valid" in invalid.json()["message"]
    assert api("post", f"/approvals/{approval.id}/decisions", data={"decision": "edit"}).status_code == 422
    assert api("post", f"/approvals/{approval.id}/decisions", data={"decision": "respond"}).status_code == 422
    assert api("post", f"/approvals/{approval.id}/decisions", data={"decision": "maybe"}).status_code == 422
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_a_run_started_with_a_token_is_its_creators_and_they_may_not_approve_it_under_a_no_self_rule(cast, api, renewals):
    from approvals.models import ApprovalPolicy
    from approvals.services import approval_decide
    from tests.factories import RENEWAL_GOAL

    ApprovalPolicy.objects.create(tenant=cast.acme, name="no self", min_risk=3, required_approvals=1)
    started = api("post", "/runs", data={"agent": "renewals", "goal": RENEWAL_GOAL})  # rita's token
    assert started.status_code == 201
    run = advance(Run.objects.get(tenant=cast.acme, number=started.json()["number"]))
    assert run.requested_by == cast.reviewer and run.status == "waiting_for_human"
    approval = run.approval_requests.get()
    refused = api("post", f"/approvals/{approval.id}/decisions", data={"decision": "approve"})
    assert refused.status_code == 403 and refused.json()["message"].startswith("You started this run")
    with pytest.raises(DecisionRefused, match="You started this run"):  # nor in the console, as herself
        approval_decide(approval=approval, approve=True, actor=cast.reviewer)
    assert api("post", f"/approvals/{approval.id}/decisions", as_user=cast.admin,
               data={"decision": "approve"}).json()["status"] == "approved"


def test_an_edit_that_needs_more_reviewers_is_accepted_with_202_and_waits(cast, api, pending):
    from approvals.models import ApprovalPolicy

    run, approval = pending
    ApprovalPolicy.objects.create(tenant=cast.acme, name="Outside email needs two", tool="email.send", min_risk=0,
                                  required_approvals=2,
                                  condition={"argument": "to", "op": "domain_not_in", "value": "acme.example"})
    edited = {**approval.arguments, "to": "buyer@rival.example"}
    response = api("post", f"/approvals/{approval.id}/decisions", data={"decision": "edit", "arguments": edited})
    assert response.status_code == 202 and response.json()["code"] == "needs_more_approvals"
    assert "now needs 2 different reviewers" in response.json()["message"]
    state = api("get", f"/approvals/{approval.id}").json()
    assert (state["status"], state["required_approvals"], state["approved_arguments"]["to"]) == (
        "pending", 2, "buyer@rival.example")
    assert advance(run).status == "waiting_for_human"


def test_a_member_token_gets_403_on_every_approvals_endpoint(cast, api, pending):
    _, approval = pending
    for method, path, data in [("get", "/approvals", None), ("get", f"/approvals/{approval.id}", None),
                               ("post", f"/approvals/{approval.id}/decisions", {"decision": "approve"}),
                               ("put", f"/approvals/{approval.id}/assignee", {"assignee": "max"})]:
        refused = api(method, path, as_user=cast.member, **({"data": data} if data else {}))
        assert refused.status_code == 403 and "reviewer or admin" in refused.json()["message"], path


def test_every_approvals_endpoint_is_404_for_another_tenant(cast, api, pending):
    _, approval = pending
    assert api("get", "/approvals", as_user=cast.both).json() == []  # sam's Globex token (admin there)
    assert api("get", f"/approvals/{approval.id}", as_user=cast.both).status_code == 404
    assert api("get", f"/approvals/{approval.id}", as_user=cast.outsider).status_code == 404
    response = api("post", f"/approvals/{approval.id}/decisions", as_user=cast.outsider, data={"decision": "approve"})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    response = api("put", f"/approvals/{approval.id}/assignee", as_user=cast.both, data={"assignee": "sam"})
    assert response.status_code == 404


def test_assign_and_list_what_is_assigned_to_me(cast, api, pending):
    _, approval = pending
    assigned = api("put", f"/approvals/{approval.id}/assignee", data={"assignee": "rita"})
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "rita"
    assert [a["id"] for a in api("get", "/approvals?assigned=me").json()] == [approval.id]
    assert api("get", "/approvals?assigned=me", as_user=cast.admin).json() == []
    unknown = api("put", f"/approvals/{approval.id}/assignee", data={"assignee": "gus"})  # Globex only
    assert unknown.status_code == 422 and "nobody called 'gus' in Acme" in unknown.json()["message"]
    cleared = api("put", f"/approvals/{approval.id}/assignee", data={"assignee": None})
    assert cleared.json()["assignee"] is None
