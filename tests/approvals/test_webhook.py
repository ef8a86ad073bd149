"""The approvals webhook: admins set it (secret shown once); deliveries are signed, go only to public
addresses over https, and the admin page says what happened in classes, never socket errors."""

import hashlib
import hmac
import json
import socket

import pytest
from django.urls import reverse

from approvals.models import ApprovalWebhook
from approvals.notifications import approval_webhook_deliver
from approvals.services import approval_decide, approval_webhook_set


@pytest.fixture
def connections(monkeypatch):
    """Every TCP connection the process opens from here on (Python's socket.create_connection): made when to
    loopback, refused here without sending anything otherwise (a test never sends traffic off this machine)."""
    opened, real = [], socket.create_connection

    def spy(address, *args, **kwargs):
        opened.append(address[0])
        if address[0] not in ("127.0.0.1", "::1"):
            raise ConnectionRefusedError(f"the test stopped a connection to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return opened


@pytest.fixture
def dns(monkeypatch):
    """Names resolved the way a test says (the machine's resolver for the rest); counts lookups per name."""
    answers, lookups, real = {}, {}, socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups[host] = lookups.get(host, 0) + 1
        addresses = answers[host][min(lookups[host], len(answers[host])) - 1]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def test_a_decision_is_delivered_signed(cast, approval, receiver):
    _, secret = approval_webhook_set(tenant=cast.acme, url=receiver.url, actor=cast.admin)
    approval_decide(approval=approval, approve=False, actor=cast.reviewer, note="Wrong recipient")
    assert approval_webhook_deliver(approval_id=approval.pk, event="decided") == "approval.decided: delivered"
    [(headers, body)] = receiver.received
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Proctor-Signature"] == expected and headers["X-Proctor-Event"] == "approval.decided"
    payload = json.loads(body)
    assert payload["approval"]["status"] == "rejected" and payload["approval"]["note"] == "Wrong recipient"
    assert payload["link"].endswith(f"/t/acme/runs/{approval.run.number}/")
    assert ApprovalWebhook.objects.get(tenant=cast.acme).last_status == "approval.decided: delivered"


def test_a_failing_receiver_is_recorded_and_raised_for_the_task_to_retry(cast, approval, receiver):
    from approvals.tasks import webhook

    approval_webhook_set(tenant=cast.acme, url=receiver.url, actor=cast.admin)
    receiver.status = 503
    with pytest.raises(OSError, match="receiver error"):
        approval_webhook_deliver(approval_id=approval.pk, event="requested")
    assert ApprovalWebhook.objects.get(tenant=cast.acme).last_status == "approval.requested: receiver error (5xx)"
    assert OSError in webhook.autoretry_for and webhook.max_retries > 0  # Celery retries what was raised
    receiver.status = 404
    assert approval_webhook_deliver(approval_id=approval.pk, event="requested") == (
        "approval.requested: refused by receiver (4xx)")


def test_internal_addresses_are_refused_before_any_connection(cast, approval, receiver, settings, connections):
    settings.WEBHOOK_ALLOW_HTTP = False
    port = receiver.server_address[1]
    for url in [f"https://127.0.0.1:{port}/hook", f"https://[::1]:{port}/hook", f"https://localhost:{port}/hook",
                "https://10.1.2.3/hook", "https://169.254.169.254/latest/meta-data/", "https://[::ffff:10.0.0.1]/hook",
                "https://[fd00:ec2::254]/hook", "https://224.0.0.1/hook", "https://0.0.0.0/hook", receiver.url]:
        ApprovalWebhook.objects.update_or_create(tenant=cast.acme, defaults={"url": url, "secret": "s"})
        assert approval_webhook_deliver(approval_id=approval.pk, event="requested") == (
            "approval.requested: blocked address"), url
    assert connections == [] and receiver.received == []


def test_every_address_a_name_resolves_to_is_checked_and_the_checked_one_is_used(cast, approval, receiver, dns,
                                                                                 connections):
    answers, lookups = dns
    answers["mixed.example"] = [["203.0.113.10", "10.0.0.7"]]  # one public, one private address: refused
    ApprovalWebhook.objects.update_or_create(tenant=cast.acme, defaults={"url": "https://mixed.example/h", "secret": "s"})
    assert approval_webhook_deliver(approval_id=approval.pk, event="requested").endswith("blocked address")
    assert connections == []

    # Rebinding: the name answers loopback (allowed in development) once, then an address that is refused.
    answers["rebind.example"] = [["127.0.0.1"], ["10.0.0.7"]]
    port = receiver.server_address[1]
    ApprovalWebhook.objects.update_or_create(tenant=cast.acme, defaults={"url": f"http://rebind.example:{port}/h",
                                                                         "secret": "s"})
    assert approval_webhook_deliver(approval_id=approval.pk, event="requested").endswith("delivered")
    assert lookups["rebind.example"] == 1 and connections == ["127.0.0.1"]
    assert receiver.received[0][0]["Host"] == f"rebind.example:{port}"


def test_redirects_are_not_followed(cast, approval, receiver, connections):
    approval_webhook_set(tenant=cast.acme, url=receiver.url, actor=cast.admin)
    receiver.status, receiver.location = 307, "http://10.0.0.7/steal"
    assert approval_webhook_deliver(approval_id=approval.pk, event="requested") == (
        "approval.requested: refused by receiver (3xx: redirects are not followed)")
    assert connections == ["127.0.0.1"] and len(receiver.received) == 1


def test_a_closed_port_and_one_that_hangs_up_look_the_same_unreachable(cast, approval, receiver):
    import threading

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    hangs_up = socket.socket()  # accepts, then closes without a word (not HTTP)
    hangs_up.bind(("127.0.0.1", 0))
    hangs_up.listen()
    threading.Thread(target=lambda: hangs_up.accept()[0].close(), daemon=True).start()
    outcomes = []
    for port in (closed_port, hangs_up.getsockname()[1]):
        ApprovalWebhook.objects.update_or_create(tenant=cast.acme, defaults={"url": f"http://127.0.0.1:{port}/",
                                                                             "secret": "s"})
        with pytest.raises(OSError) as failed:  # retried later
            approval_webhook_deliver(approval_id=approval.pk, event="requested")
        outcomes.append(str(failed.value))
    hangs_up.close()
    assert outcomes == ["approval.requested: unreachable"] * 2


def test_admins_set_it_and_see_the_secret_once_others_cannot(cast, client_for):
    url = reverse("approval_webhook", args=["acme"])
    assert client_for(cast.outsider).post(url, {"url": "https://x.example/h"}).status_code == 404
    assert client_for(cast.reviewer).post(url, {"url": "https://x.example/h"}).status_code == 403
    admin = client_for(cast.admin)
    set_it = admin.post(url, {"url": "https://hooks.example/proctor"})
    hook = ApprovalWebhook.objects.get(tenant=cast.acme)
    assert set_it.status_code == 302 and all(hook.secret not in c.value for c in set_it.cookies.values())
    shown = admin.get(set_it.url)
    assert hook.secret in shown.content.decode() and "shown only now" in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    assert hook.secret not in admin.get(reverse("approval_policies", args=["acme"])).content.decode()
    bad = admin.post(url, {"url": "not a url"}, follow=True).content.decode()
    assert "full https:// URL" in bad
    admin.post(url, {"url": ""})
    assert not ApprovalWebhook.objects.exists()


def test_the_page_refuses_plain_http_and_internal_addresses_without_the_development_setting(cast, client_for):
    url, admin = reverse("approval_webhook", args=["acme"]), client_for(cast.admin)
    for address, says in [("http://hooks.example/proctor", "http:// is for development only"),
                          ("https://169.254.169.254/latest/meta-data/", "inside the server&#x27;s own network"),
                          ("https://10.0.0.1/hook", "inside the server&#x27;s own network"),
                          ("https://localhost:8080/hook", "inside the server&#x27;s own network")]:
        assert says in admin.post(url, {"url": address}, follow=True).content.decode(), address
    assert not ApprovalWebhook.objects.exists()
