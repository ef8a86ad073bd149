"""The reviewer's flow in the queue: a reason to reject, the next request after a decision (in the URL),
errors beside what they concern, the plan as it was after a refused empty edit."""

import json

from django.urls import reverse

from agents.services import run_start
from console.models import AuditEvent
from tests.factories import RENEWAL_GOAL, advance

HTMX = {"HTTP_HX_REQUEST": "true"}


def decide(client, approval, current="/t/acme/approvals/", **data):
    return client.post(reverse("approval_decide", args=["acme", approval.pk]), data, **HTMX,
                       HTTP_HX_CURRENT_URL="http://testserver" + current)


def second_request(cast, renewals):
    run = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    return run.approval_requests.get()


def test_reject_needs_a_reason_or_an_explicit_without(cast, client_for, approval):
    client = client_for(cast.reviewer)
    refused = decide(client, approval, decision="reject", note="  ")
    assert refused.status_code == 422
    assert 'id="reject-reason" maxlength="2000" placeholder="What should the agent do instead?"\n             aria-invalid="true"' in refused.text
    assert '<p class="error field-error" id="reject-reason-error">Say why you reject it' in refused.text
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert decide(client, approval, decision="reject", without_reason="1").status_code == 200
    approval.refresh_from_db()
    assert approval.status == "rejected" and approval.decision_note == ""


def test_after_a_decision_the_pane_shows_the_next_request_and_the_url_follows(cast, client_for, approval, renewals):
    other = second_request(cast, renewals)
    client = client_for(cast.reviewer)
    first, second = sorted([approval, other], key=lambda a: a.pk)  # risk ties: oldest first
    response = decide(client, first, current=f"/t/acme/approvals/?sort=oldest&id={first.pk}", decision="approve")
    assert response.status_code == 200
    assert f'data-approval-id="{second.pk}"' in response.text
    assert f"email.send on run #{first.run.number} approved. Next request:" in response.text
    assert response["HX-Replace-Url"] == f"/t/acme/approvals/?sort=oldest&id={second.pk}"
    last = decide(client, second, decision="reject", note="Not now")
    assert "rejected. Nothing else waits for you." in last.text and f'data-approval-id="{second.pk}"' in last.text
    # The URL names the request: a reload (or Back) shows that one.
    page = client.get(f"/t/acme/approvals/?id={first.pk}").text
    assert f'data-approval-id="{first.pk}"' in page and "Approved by rita" in page


def test_a_decision_in_the_middle_of_the_queue_moves_to_the_one_after_it_then_back_to_the_first(
        cast, client_for, approval, renewals):
    first, middle, last = sorted([approval, second_request(cast, renewals), second_request(cast, renewals)],
                                 key=lambda a: a.pk)
    client = client_for(cast.reviewer)
    response = decide(client, middle, current=f"/t/acme/approvals/?sort=oldest&id={middle.pk}", decision="approve")
    assert f'data-approval-id="{last.pk}"' in response.text and "approved. Next request:" in response.text
    assert response["HX-Replace-Url"] == f"/t/acme/approvals/?sort=oldest&id={last.pk}"
    # Nothing after the last one: the first still open, whatever the order.
    response = decide(client, last, current=f"/t/acme/approvals/?sort=oldest&id={last.pk}", decision="reject",
                      note="Not now")
    assert f'data-approval-id="{first.pk}"' in response.text and "rejected. Next request:" in response.text
    # Filtered to a tool no request calls: the decided one was not in that queue, so nothing is left in it.
    response = decide(client, first, current=f"/t/acme/approvals/?tool=calendar.book&id={first.pk}",
                      decision="approve")
    assert "approved. Nothing else waits for you." in response.text and f'data-approval-id="{first.pk}"' in response.text


def test_assigned_to_me_moves_to_my_next_request_not_to_someone_elses(cast, client_for, approval, renewals):
    from approvals.services import approval_assign

    first, other, mine_too = sorted([approval, second_request(cast, renewals), second_request(cast, renewals)],
                                    key=lambda a: a.pk)
    for request in (first, mine_too):
        approval_assign(approval=request, assignee="rita", actor=cast.admin)
    response = decide(client_for(cast.reviewer), first, current=f"/t/acme/approvals/?sort=oldest&mine=1&id={first.pk}",
                      decision="approve")
    assert f'data-approval-id="{mine_too.pk}"' in response.text and "approved. Next request:" in response.text
    assert response["HX-Replace-Url"] == f"/t/acme/approvals/?sort=oldest&mine=1&id={mine_too.pk}"


def test_queue_links_keep_the_filters_and_push_the_selection_into_the_url(cast, client_for, approval):
    page = client_for(cast.reviewer).get("/t/acme/approvals/?sort=oldest&tool=email.send").text
    assert f'hx-push-url="/t/acme/approvals/?sort=oldest&amp;tool=email.send&amp;id={approval.pk}"' in page


def test_a_pane_asked_again_after_someone_else_decided_says_so(cast, client_for, approval):
    decide(client_for(cast.admin), approval, decision="approve")
    pane = client_for(cast.reviewer).get(reverse("approval_detail", args=["acme", approval.pk]) + "?changed=1", **HTMX)
    assert "decided by someone else while you had it open" in pane.text and "Approved by ada" in pane.text


def test_bad_json_says_where_beside_the_text_and_keeps_it_open(cast, client_for, approval):
    typed = '{\n  "to": "dana@acme.example"\n  "subject": "x"\n}'
    refused = decide(client_for(cast.reviewer), approval, decision="edit", form="json", arguments=typed)
    assert refused.status_code == 422
    assert '<p class="error field-error" id="arguments-json-error">Line 3, column 3: Expecting &#x27;,&#x27; delimiter' in refused.text
    assert 'aria-invalid="true" aria-describedby="arguments-json-error" autofocus>{' in refused.text
    assert '<details id="edit-json" open>' in refused.text and '<details id="edit-arguments" class="edit" open>' in refused.text
    schema = decide(client_for(cast.reviewer), approval, decision="edit", form="json",
                    arguments=json.dumps({"to": "nobody"}))
    assert schema.status_code == 422 and 'id="arguments-json-error">The arguments for email.send are not valid' in schema.text


def test_a_refused_empty_plan_edit_shows_the_plan_as_it_was(cast, client_for, renewals):
    from agents.models import Agent

    reviewed = Agent.objects.get(tenant=cast.acme, slug="renewals-reviewed")
    reviewed_plan = advance(run_start(tenant=cast.acme, agent=reviewed, goal=RENEWAL_GOAL,
                                      requested_by=cast.member)).approval_requests.get()
    refused = decide(client_for(cast.reviewer), reviewed_plan, decision="edit", steps=["", "  "])
    assert refused.status_code == 422
    for title in reviewed_plan.arguments["steps"]:
        assert f'name="steps" value="{title}"' in refused.text
    assert refused.text.count('name="steps" value=""') == 1  # only the row to add a step, no blank ones


def test_an_answer_is_audited_as_an_answer_not_an_edit(cast, client_for, approval):
    from approvals.services import approval_decide

    approval.kind, approval.arguments = "question", {"question": "Which account?", "options": []}
    approval.save(update_fields=["kind", "arguments"])
    approval_decide(approval=approval, approve=True, actor=cast.reviewer, answer="ACME-042")
    event = AuditEvent.objects.get(verb="approval.answer")
    assert event.data["answer"] == "ACME-042" and "edited" not in event.data


def test_the_run_card_asks_for_a_reason_to_reject_too(cast, client_for, approval):
    url = reverse("approval_decide", args=["acme", approval.pk])
    refused = client_for(cast.reviewer).post(url, {"decision": "reject", "from": "run"}, **HTMX)
    assert refused.status_code == 422 and refused.text.startswith("Say why you reject it")
    client_for(cast.reviewer).post(url, {"decision": "reject", "from": "run", "without_reason": "1"}, **HTMX)
    approval.refresh_from_db()
    assert approval.status == "rejected"


def test_a_decision_whose_next_pane_the_page_prefetched_answers_with_the_note_alone(cast, client_for, approval,
                                                                                   renewals):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first, middle, last = sorted([approval, second_request(cast, renewals), second_request(cast, renewals)],
                                 key=lambda a: a.pk)
    client = client_for(cast.reviewer)
    with CaptureQueriesContext(connection) as whole:  # no prefetch: the next pane is read and rendered
        full = decide(client, first, current=f"/t/acme/approvals/?sort=oldest&id={first.pk}", decision="approve")
    assert f'data-approval-id="{middle.pk}"' in full.text and "HX-Trigger" not in full
    with CaptureQueriesContext(connection) as small:
        response = decide(client, middle, current=f"/t/acme/approvals/?sort=oldest&id={middle.pk}",
                          decision="approve", prefetched=str(last.pk))
    assert response.status_code == 200
    assert response.text.strip() == (f'<p class="notice decided-note" role="status" data-decided="{middle.pk}">'
                                     f"email.send on run #{middle.run.number} approved. Next request:</p>")
    assert json.loads(response["HX-Trigger"]) == {"approvals:prefetched-pane": {"id": last.pk}}
    assert response["HX-Replace-Url"] == f"/t/acme/approvals/?sort=oldest&id={last.pk}"
    assert len(small) < len(whole), (len(small), len(whole))
    middle.refresh_from_db()
    assert middle.status == "approved"


def test_a_prefetched_pane_that_is_not_next_or_garbage_gets_the_whole_pane_as_before(cast, client_for, approval,
                                                                                      renewals):
    requests = sorted([approval] + [second_request(cast, renewals) for _ in range(5)], key=lambda a: a.pk)
    client = client_for(cast.reviewer)
    # Stale (the page kept the pane of one no longer next), not an id, not a positive ASCII integer.
    for decided, prefetched in zip(requests, [str(requests[2].pk), "abc", "-3", "１２", "9" * 40]):
        response = decide(client, decided, current=f"/t/acme/approvals/?sort=oldest&id={decided.pk}",
                          decision="approve", prefetched=prefetched)
        after = requests[requests.index(decided) + 1]
        assert response.status_code == 200, prefetched
        assert f'data-approval-id="{after.pk}"' in response.text and "approved. Next request:" in response.text
        assert "HX-Trigger" not in response, prefetched
    # Nothing left: the decided request is shown, whatever the page says it holds.
    last = decide(client, requests[-1], decision="approve", prefetched=str(requests[0].pk))
    assert "approved. Nothing else waits for you." in last.text and f'data-approval-id="{requests[-1].pk}"' in last.text


def test_a_refused_decision_shows_its_pane_with_the_refusal_even_with_a_prefetched_pane(cast, client_for, approval,
                                                                                      renewals):
    other = second_request(cast, renewals)
    client = client_for(cast.reviewer)
    refused = decide(client, approval, decision="reject", note=" ", prefetched=str(other.pk))
    assert refused.status_code == 422 and "Say why you reject it" in refused.text
    assert f'data-approval-id="{approval.pk}"' in refused.text and "HX-Trigger" not in refused
    decide(client_for(cast.admin), approval, decision="approve")
    again = decide(client, approval, decision="approve", prefetched=str(other.pk))
    assert again.status_code == 409 and "Already approved by ada" in again.text
    assert f'data-approval-id="{approval.pk}"' in again.text and "HX-Trigger" not in again
