"""An approval the run still waits for is a span while it is open: a running bar up to now, status open,
saying who it waits for and since when, its detail linking to the approval; the decision closes it."""

import json
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from agents.services import run_start
from approvals.models import ApprovalRequest
from tests.factories import make_trace
from traces.selectors import trace_skeleton


def rows_of(data):
    return [dict(zip(data["fields"], row, strict=True)) for row in data["spans"]]


def waiting_run(cast, looper):
    run = run_start(tenant=cast.acme, agent=looper, goal="Call noop 3 times", requested_by=cast.member)
    run.status = "waiting_for_human"
    run.save(update_fields=["status"])
    make_trace(run, 20, finished=False)
    wait = ApprovalRequest.objects.create(tenant=cast.acme, run=run, step=4, call_id="call-send", tool="email.send",
                                          arguments={"to": "x@example.com"}, risk=2, policy="email needs a reviewer")
    ApprovalRequest.objects.filter(pk=wait.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    return run, wait


def test_an_open_approval_is_a_wait_span_up_to_now_under_the_run(cast, client_for, looper):
    run, wait = waiting_run(cast, looper)
    data = json.loads(client_for(cast.member).get(reverse("trace_skeleton", args=["acme", run.number])).content)
    rows = rows_of(data)
    [open_wait] = [row for row in rows if data["statuses"][row["status"]] == "open"]
    assert open_wait["id"] == -wait.pk and open_wait["name"] == "approval wait email.send"
    assert data["kinds"][open_wait["kind"]] == "approval" and rows[open_wait["parent"]]["id"] == 0  # the run so far
    assert open_wait["duration_us"] >= 90_000_000  # waiting for a minute and a half, up to now
    assert rows[0]["subtree_duration_us"] >= open_wait["start_us"] + open_wait["duration_us"] - rows[0]["start_us"]

    detail = client_for(cast.member).get(reverse("trace_open_wait", args=["acme", run.number, wait.pk]))
    page = detail.content.decode()
    assert detail.status_code == 200 and "Waiting for</dt><dd>any reviewer" in page and "so far" in page
    assert reverse("approval_detail", args=["acme", wait.pk]) in page

    ApprovalRequest.objects.filter(pk=wait.pk).update(assignee=cast.reviewer)
    page = client_for(cast.member).get(reverse("trace_open_wait", args=["acme", run.number, wait.pk])).content.decode()
    assert "Waiting for</dt><dd>rita" in page


def test_a_decided_approval_is_no_longer_open(cast, client_for, looper):
    run, wait = waiting_run(cast, looper)
    ApprovalRequest.objects.filter(pk=wait.pk).update(status="approved", decided_at=timezone.now(), decided_by=cast.reviewer)
    skeleton = trace_skeleton(tenant=cast.acme, run=run)
    assert not [row for row in skeleton["spans"] if row[0] < 0]
    page = client_for(cast.member).get(reverse("trace_open_wait", args=["acme", run.number, wait.pk])).content.decode()
    assert "has been decided" in page


def test_another_tenants_approval_is_no_wait_of_this_run(cast, client_for, looper):
    run, wait = waiting_run(cast, looper)
    outsider = client_for(cast.outsider)
    assert outsider.get(reverse("trace_open_wait", args=["acme", run.number, wait.pk])).status_code == 404
    assert outsider.get(reverse("trace_open_wait", args=["globex", run.number, wait.pk])).status_code == 404
