"""Run webhooks: admins add them (secret once, URL rules); a run that completes, fails or waits for a person is
delivered signed, by a real worker; failures are logged and retried; addresses inside the network are refused at
send time, also when a name resolves to one."""

import hashlib
import hmac
import json

import pytest
from django.urls import reverse

from agents.services import run_start
from console.models import AuditEvent
from console.services import api_token_create
from tests.approvals.conftest import receiver  # noqa: F401  (a webhook endpoint on loopback)
from tests.approvals.test_webhook import connections, dns  # noqa: F401
from tests.conftest import wait_for
from tests.factories import RENEWAL_GOAL, advance, make_looper
from webhooks.models import Delivery, RunWebhook
from webhooks.services import MAX_ATTEMPTS, delivery_attempt, webhook_create


def signed(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(cast, client_for, receiver):  # noqa: F811
    client, url = client_for(cast.admin), reverse("admin_webhooks", args=["acme"])
    client.post(url, {"url": receiver.url, "events": ["run.completed", "run.failed"]})
    hook = RunWebhook.objects.get(tenant=cast.acme)
    assert hook.events == ["run.completed", "run.failed"]
    page = client.get(url)
    assert hook.secret in page.content.decode() and "no-store" in page["Cache-Control"]
    assert hook.secret not in client.get(url).content.decode()
    assert AuditEvent.objects.filter(verb="run_webhook.created", target=receiver.url).exists()
    client.post(reverse("admin_webhook_remove", args=["acme", hook.pk]))
    assert not RunWebhook.objects.exists()


def test_the_page_refuses_http_and_internal_addresses(cast, client_for, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    client, url = client_for(cast.admin), reverse("admin_webhooks", args=["acme"])
    for bad in ["http://hooks.example.com/h", "https://127.0.0.1/h", "https://localhost/h", "https://10.0.0.8/h",
                "https://169.254.169.254/latest/meta-data/", "https://[::ffff:192.168.1.1]/h", "not a url"]:
        page = client.post(url, {"url": bad, "events": ["run.completed"]})
        assert page.status_code == 200 and 'class="error"' in page.content.decode(), bad
    assert not RunWebhook.objects.exists()


def test_completed_and_waiting_runs_are_delivered_signed(cast, receiver, renewals):  # noqa: F811
    hook, secret = webhook_create(tenant=cast.acme, url=receiver.url, events=["run.completed",
                                                                               "run.waiting_for_person"], actor=cast.admin)
    waiting = advance(run_start(tenant=cast.acme, agent=renewals, goal=RENEWAL_GOAL, requested_by=cast.member))
    done = advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                             requested_by=cast.member))
    assert (waiting.status, done.status) == ("waiting_for_human", "completed")
    deliveries = {d.event: d for d in Delivery.objects.filter(tenant=cast.acme)}
    assert set(deliveries) == {"run.waiting_for_person", "run.completed"}
    for delivery in deliveries.values():
        assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    bodies = {json.loads(body)["event"]: (headers, body) for headers, body in receiver.received}
    headers, body = bodies["run.completed"]
    assert headers["X-Proctor-Signature"] == signed(secret, body) and headers["X-Proctor-Event"] == "run.completed"
    payload = json.loads(body)
    assert payload["run"]["number"] == done.number and payload["run"]["status"] == "completed"
    assert payload["link"].endswith(f"/t/acme/runs/{done.number}/")
    assert json.loads(bodies["run.waiting_for_person"][1])["run"]["number"] == waiting.number


def test_another_tenants_runs_are_not_sent_to_my_webhook(cast, receiver):  # noqa: F811
    webhook_create(tenant=cast.acme, url=receiver.url, events=["run.completed"], actor=cast.admin)
    advance(run_start(tenant=cast.globex, agent=make_looper(cast.globex), goal="Call noop 1 times",
                      requested_by=cast.outsider))
    assert not Delivery.objects.exists()


def test_a_failing_receiver_is_retried_then_failed_and_an_admin_sends_it_again(cast, client_for, receiver,  # noqa: F811
                                                                              django_capture_on_commit_callbacks):
    webhook_create(tenant=cast.acme, url=receiver.url, events=["run.completed"], actor=cast.admin)
    advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member))
    delivery = Delivery.objects.get()
    receiver.status = 503
    for _ in range(MAX_ATTEMPTS - 1):
        assert delivery_attempt(delivery_id=delivery.pk).status == "retrying"
    last = delivery_attempt(delivery_id=delivery.pk)
    assert (last.status, last.attempts, last.outcome) == ("failed", MAX_ATTEMPTS, "receiver error (5xx)")
    client = client_for(cast.admin)
    log = client.get(reverse("admin_webhooks", args=["acme"])).content.decode()
    assert "receiver error (5xx)" in log and "Send again" in log
    receiver.status = 204
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("admin_delivery_retry", args=["acme", delivery.pk]))
    assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    assert AuditEvent.objects.filter(verb="run_webhook.retried").exists()


def test_a_name_resolving_to_a_private_address_is_refused_at_send_time(cast, receiver, dns, connections):  # noqa: F811
    answers, _ = dns
    answers["hooks.example.com"] = [["10.20.30.40"]]
    hook = RunWebhook.objects.create(tenant=cast.acme, url="https://hooks.example.com/proctor", secret="s")
    answers["meta.example.com"] = [["169.254.169.254"]]
    RunWebhook.objects.create(tenant=cast.acme, url="https://meta.example.com/h", secret="s")
    advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times", requested_by=cast.member))
    for delivery in Delivery.objects.all():
        attempted = delivery_attempt(delivery_id=delivery.pk)
        assert (attempted.status, attempted.outcome) == ("failed", "blocked address"), delivery.webhook.url
    assert connections == [] and hook.deliveries.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_when_a_run_completes(cast, receiver, start_worker):  # noqa: F811
    hook, secret = webhook_create(tenant=cast.acme, url=receiver.url, events=["run.completed"], actor=cast.admin)
    start_worker(env={"WEBHOOK_ALLOW_HTTP": "1"})
    run = run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 2 times", requested_by=cast.member)
    wait_for(lambda: receiver.received, 60, message="the webhook delivery")
    headers, body = receiver.received[0]
    assert json.loads(body)["run"]["number"] == run.number and headers["X-Proctor-Signature"] == signed(secret, body)
    wait_for(lambda: Delivery.objects.get().status == "delivered", 10, message="the delivery's status")


class TestApi:
    def test_add_list_log_retry_and_remove(self, cast, client, receiver):  # noqa: F811
        secret = api_token_create(tenant=cast.acme, name="ops", actor=cast.admin).secret
        auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "content_type": "application/json"}
        made = client.post("/api/v1/webhooks", {"url": receiver.url, "events": ["run.completed"]}, **auth)
        assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
        assert "secret" not in client.get("/api/v1/webhooks", **auth).json()[0]
        refused = client.post("/api/v1/webhooks", {"url": "https://10.0.0.1/h"}, **auth)
        assert refused.status_code == 422 and "inside the server's own network" in refused.json()["message"]
        advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 1 times",
                          requested_by=cast.member))
        [logged] = client.get("/api/v1/webhook-deliveries", **auth).json()
        assert logged["event"] == "run.completed" and logged["status"] == "pending"
        assert client.post(f"/api/v1/webhook-deliveries/{logged['id']}/retry", **auth).status_code == 200
        assert client.delete(f"/api/v1/webhooks/{made.json()['id']}", **auth).status_code == 204
        other = api_token_create(tenant=cast.globex, name="g", actor=cast.both).secret
        assert client.post(f"/api/v1/webhook-deliveries/{logged['id']}/retry",
                           HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 404


def test_webhook_endpoints_check_tenant_and_role(cast, client_for):
    for name in ("admin_webhook_remove", "admin_delivery_retry"):
        url = reverse(name, args=["acme", 1])
        assert client_for(cast.outsider).post(url).status_code == 404
        assert client_for(cast.finance).post(url).status_code == 403


def test_an_admin_sends_again_a_budget_event_that_is_about_no_run(cast, client_for, django_capture_on_commit_callbacks):
    hook = RunWebhook.objects.create(tenant=cast.acme, url="https://hooks.example.com/proctor", secret="s",
                                     events=["budget.threshold"])
    delivery = Delivery.objects.create(tenant=cast.acme, webhook=hook, run=None, event="budget.threshold",
                                       payload={"event": "budget.threshold", "run": None}, status="failed")
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(cast.admin).post(reverse("admin_delivery_retry", args=["acme", delivery.pk]), follow=True)
    assert response.status_code == 200
    assert "budget.threshold is being sent again." in response.content.decode()
