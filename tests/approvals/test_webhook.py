"""The approvals webhook: admins set it (secret shown once); deliveries are signed and say what happened."""

import hashlib
import hmac
import json

import pytest
from django.urls import reverse

from approvals.models import ApprovalWebhook
from approvals.notifications import approval_webhook_deliver
from approvals.services import approval_decide, approval_webhook_set


def test_a_decision_is_delivered_signed(cast, approval, receiver):
    _, secret = approval_webhook_set(tenant=cast.acme, url=receiver.url, actor=cast.admin)
    approval_decide(approval=approval, approve=False, actor=cast.reviewer, note="Wrong recipient")
    assert approval_webhook_deliver(approval_id=approval.pk, event="decided") == "approval.decided: HTTP 204"
    [(headers, body)] = receiver.received
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Proctor-Signature"] == expected and headers["X-Proctor-Event"] == "approval.decided"
    payload = json.loads(body)
    assert payload["approval"]["status"] == "rejected" and payload["approval"]["note"] == "Wrong recipient"
    assert payload["link"].endswith(f"/t/acme/runs/{approval.run_id}/")
    assert ApprovalWebhook.objects.get(tenant=cast.acme).last_status == "approval.decided: HTTP 204"


def test_a_failing_receiver_is_recorded_and_raised_for_the_task_to_retry(cast, approval, receiver):
    from approvals.tasks import webhook

    approval_webhook_set(tenant=cast.acme, url=receiver.url, actor=cast.admin)
    receiver.status = 503
    with pytest.raises(OSError, match="HTTP 503"):
        approval_webhook_deliver(approval_id=approval.pk, event="requested")
    assert ApprovalWebhook.objects.get(tenant=cast.acme).last_status == "approval.requested: HTTP 503"
    assert OSError in webhook.autoretry_for and webhook.max_retries > 0  # Celery retries what was raised


def test_admins_set_it_and_see_the_secret_once_others_cannot(cast, client_for):
    url = reverse("approval_webhook", args=["acme"])
    assert client_for(cast.outsider).post(url, {"url": "https://x.example/h"}).status_code == 404
    assert client_for(cast.reviewer).post(url, {"url": "https://x.example/h"}).status_code == 403
    admin = client_for(cast.admin)
    page = admin.post(url, {"url": "https://hooks.example/proctor"}, follow=True).content.decode()
    hook = ApprovalWebhook.objects.get(tenant=cast.acme)
    assert hook.secret in page and "shown only now" in page
    assert hook.secret not in admin.get(reverse("approval_policies", args=["acme"])).content.decode()
    bad = admin.post(url, {"url": "not a url"}, follow=True).content.decode()
    assert "full http(s):// URL" in bad
    admin.post(url, {"url": ""})
    assert not ApprovalWebhook.objects.exists()
