"""The reviewer queue pages: what a reviewer sees and does; outsiders 404, members 403."""

import json

from django.urls import reverse

from tests.factories import RENEWAL_GOAL, advance

HTMX = {"HTTP_HX_REQUEST": "true"}


def decide(client, approval, **data):
    return client.post(reverse("approval_decide", args=["acme", approval.pk]), data, **HTMX)


def test_the_queue_shows_everything_needed_to_decide(cast, client_for, approval):
    page = client_for(cast.reviewer).get(reverse("approvals", args=["acme"])).content.decode()
    assert f'id="queue-item-{approval.pk}"' in page and "email.send" in page
    for fact in (approval.reason, approval.policy, RENEWAL_GOAL, "csm-042@acme.example", "Approve", "Reject"):
        assert fact in page, fact
    filtered = client_for(cast.reviewer).get(reverse("approvals", args=["acme"]) + "?tool=calendar.book&sort=due")
    assert f'id="queue-item-{approval.pk}"' not in filtered.content.decode()


def test_approve_from_the_detail_pane(cast, client_for, approval):
    response = decide(client_for(cast.reviewer), approval, decision="approve")
    assert response.status_code == 200 and "Approved by rita" in response.content.decode()
    again = decide(client_for(cast.admin), approval, decision="reject")
    assert again.status_code == 409 and "Already approved by rita at" in again.content.decode()


def test_edit_shows_the_diff_and_bad_edits_say_why(cast, client_for, approval):
    client = client_for(cast.reviewer)
    bad_json = decide(client, approval, decision="edit", arguments="{not json")
    assert bad_json.status_code == 422 and "must be a JSON object" in bad_json.content.decode()
    bad_schema = decide(client, approval, decision="edit", arguments=json.dumps({"to": "nobody"}))
    assert bad_schema.status_code == 422 and "not valid" in bad_schema.content.decode()
    edited = {**approval.arguments, "to": "dana@acme.example"}
    done = decide(client, approval, decision="edit", arguments=json.dumps(edited)).content.decode()
    assert "Edited before approval" in done and "dana@acme.example" in done and "csm-042@acme.example" in done


def test_an_edit_that_needs_more_reviewers_says_so_in_the_pane(cast, client_for, approval):
    from approvals.models import ApprovalPolicy

    ApprovalPolicy.objects.create(tenant=cast.acme, name="Outside email needs two", tool="email.send", min_risk=0,
                                  required_approvals=2,
                                  condition={"argument": "to", "op": "domain_not_in", "value": "acme.example"})
    edited = {**approval.arguments, "to": "buyer@rival.example"}
    response = decide(client_for(cast.reviewer), approval, decision="edit", form="json", arguments=json.dumps(edited))
    page = response.content.decode()
    assert response.status_code == 202
    assert "this request now needs 2 different reviewers" in page and "Your approval is 1 of 2" in page
    assert "needs 2 different people" in page and "rita: approve" in page


def test_reject_with_a_reason(cast, client_for, approval):
    response = decide(client_for(cast.reviewer), approval, decision="reject", note="Wrong recipient")
    assert response.status_code == 200 and "Wrong recipient" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "rejected" and approval.decision_note == "Wrong recipient"


def test_outsiders_get_404_and_members_403_everywhere(cast, client_for, approval):
    urls = [("get", reverse("approvals", args=["acme"])), ("get", reverse("approval_detail", args=["acme", approval.pk])),
            ("post", reverse("approval_decide", args=["acme", approval.pk])),
            ("post", reverse("approval_assign", args=["acme", approval.pk]))]
    data = {"decision": "approve", "assignee": "me"}
    for method, url in urls:
        assert getattr(client_for(cast.outsider), method)(url, data, **HTMX).status_code == 404, url
        assert getattr(client_for(cast.member), method)(url, data, **HTMX).status_code == 403, url
    approval.refresh_from_db()
    assert approval.status == "pending" and approval.assignee_id is None


def test_another_tenants_request_is_404_even_where_you_review(cast, client_for, approval):
    """sam reviews in Acme and administers Globex: through Globex, Acme's request does not exist."""
    sam = client_for(cast.both)
    for method, url in [("get", reverse("approval_detail", args=["globex", approval.pk])),
                        ("post", reverse("approval_decide", args=["globex", approval.pk])),
                        ("post", reverse("approval_assign", args=["globex", approval.pk]))]:
        assert getattr(sam, method)(url, {"decision": "approve", "assignee": "me"}, **HTMX).status_code == 404, url
    assert sam.get(reverse("approvals", args=["globex"]) + f"?id={approval.pk}").status_code == 404
    approval.refresh_from_db()
    assert approval.status == "pending" and approval.assignee_id is None


def test_the_run_page_says_what_waits_for_whom_and_then_what_ran(cast, client_for, approval):
    from approvals.models import ApprovalRequest

    ApprovalRequest.objects.filter(pk=approval.pk).update(required_approvals=2, status="escalated")
    page = client_for(cast.member).get(reverse("run_detail", args=["acme", approval.run.number])).content.decode()
    assert "waits for\n    2 different reviewers" in page and "escalated to admins" in page and "due <time" in page
    ApprovalRequest.objects.filter(pk=approval.pk).update(required_approvals=1, status="pending")
    edited = {**approval.arguments, "to": "dana@acme.example"}
    decide(client_for(cast.reviewer), approval, decision="edit", arguments=json.dumps(edited))
    advance(approval.run)
    page = client_for(cast.member).get(reverse("run_detail", args=["acme", approval.run.number])).content.decode()
    assert "edited before approval" in page and "dana@acme.example" in page and "it ran: ok" in page


def test_the_next_pane_s_queue_is_the_queue_the_page_lists_for_every_sort_and_filter(cast, renewals):
    """queue_ids_around (a prepared statement) against approval_list (the ORM's list the page shows): the same
    requests in the same order, with the decided one kept in its place as it was before the decision."""
    import itertools
    from datetime import timedelta

    from django.utils import timezone

    from agents.services import run_start
    from approvals.models import ApprovalRequest
    from approvals.selectors import QUEUE_PAGE, SORTS, approval_list, queue_ids_around
    from console.models import Membership

    run = run_start(tenant=cast.acme, agent=renewals, goal="queue", requested_by=cast.member)
    now = timezone.now()
    for n, (tool, risk, status, assignee, role) in enumerate([
            ("email.send", 3, "pending", None, "admin"), ("crm.update", 4, "pending", cast.reviewer, "admin"),
            ("email.send", 2, "escalated", None, "reviewer"), ("crm.update", 3, "approved", None, "admin"),
            ("email.send", 4, "escalated", None, "admin"), ("billing.create_invoice", 3, "pending", cast.reviewer,
                                                            "admin")]):
        ApprovalRequest.objects.create(tenant=cast.acme, run=run, step=n, call_id=f"c{n}", tool=tool, risk=risk,
                                       policy="test", status=status, assignee=assignee, escalate_to_role=role,
                                       due_at=now + timedelta(minutes=10 - n))
    viewer = Membership.objects.get(tenant=cast.acme, user=cast.reviewer)
    decided = ApprovalRequest.objects.get(run=run, call_id="c5")  # open and mine, then decided
    combos = itertools.product(SORTS, ("", "email.send"), ("", "renewals", "nobody"), (0, 3), (False, True))
    listed = {combo: [a.pk for a in approval_list(tenant=cast.acme, status="open", sort=combo[0], tool=combo[1],
                                                  agent=combo[2], min_risk=combo[3], mine=combo[4], viewer=viewer,
                                                  limit=QUEUE_PAGE)] for combo in combos}
    assert any(decided.pk in ids for ids in listed.values()) and any(len(ids) > 2 for ids in listed.values())
    ApprovalRequest.objects.filter(pk=decided.pk).update(status="approved")
    for (sort, tool, agent, min_risk, mine), ids in listed.items():
        assert queue_ids_around(viewer=viewer, decided=decided, sort=sort, tool=tool, agent=agent, min_risk=min_risk,
                                mine=mine) == ids, (sort, tool, agent, min_risk, mine)
