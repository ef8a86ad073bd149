"""A budget's threshold crossed is told once per period: by email to the tenant's finance and admin members,
and to the run webhooks subscribed to ``budget.threshold`` (signed, through the webhooks' one sender)."""

import hashlib
import hmac
import json

import pytest
from django.contrib.auth import get_user_model

from agents.services import run_start
from costs.models import Budget, BudgetAlert
from costs.notifications import budget_alert_email_send
from costs.services import budget_save
from tests.approvals.conftest import receiver  # noqa: F401  (a webhook endpoint on loopback)
from tests.conftest import wait_for
from tests.factories import advance, make_looper
from webhooks.models import Delivery
from webhooks.services import delivery_attempt, webhook_create


@pytest.fixture(autouse=True)
def people(cast, settings):
    settings.MODEL_MAX_OUTPUT_TOKENS = 20
    settings.DEMO_PRICED_AS = "openai:gpt-4o-mini"
    settings.CONSOLE_URL = "https://proctor.example"
    for user in (cast.admin, cast.finance, cast.reviewer, cast.member, cast.outsider):
        get_user_model().objects.filter(pk=user.pk).update(email=f"{user.username}@mail.example")


def watched(cast):
    return budget_save(tenant=cast.acme, actor=cast.finance,
                       budget=Budget(name="Watched", limit_tokens=500, thresholds=[50, 100], action="alert"))


def test_each_crossing_is_delivered_once_to_subscribed_webhooks_signed(cast, receiver):  # noqa: F811
    hook, secret = webhook_create(tenant=cast.acme, url=receiver.url, events=["budget.threshold"], actor=cast.admin)
    webhook_create(tenant=cast.acme, url=receiver.url, events=["run.completed"], actor=cast.admin)  # not subscribed
    budget = watched(cast)
    agent = make_looper(cast.acme)
    for _ in range(2):  # the second run passes the same thresholds again: nothing new
        advance(run_start(tenant=cast.acme, agent=agent, goal="Call noop 6 times", requested_by=cast.member))
    deliveries = Delivery.objects.filter(event="budget.threshold")
    assert deliveries.count() == 2 and {d.webhook_id for d in deliveries} == {hook.pk}
    for delivery in deliveries:
        assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    bodies = sorted((json.loads(body) for _, body in receiver.received), key=lambda body: body["threshold"])
    assert [b["threshold"] for b in bodies] == [50, 100]
    assert bodies[1]["budget"]["name"] == "Watched" and bodies[1]["budget"]["id"] == budget.pk
    assert bodies[1]["spent_tokens"] >= 500 and bodies[1]["link"] == "https://proctor.example/t/acme/costs/budgets/"
    headers, body = receiver.received[0]
    assert headers["X-Proctor-Event"] == "budget.threshold"
    assert headers["X-Proctor-Signature"] == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_finance_and_admins_are_emailed_once(cast, mailoutbox):
    watched(cast)
    advance(run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 6 times",
                      requested_by=cast.member))
    alert = BudgetAlert.objects.get(threshold=100)
    assert budget_alert_email_send(alert_id=alert.pk) == 2
    assert budget_alert_email_send(alert_id=alert.pk) == 0  # the task delivered again sends nothing
    [mail] = mailoutbox
    assert sorted(mail.to) == ["ada@mail.example", "finn@mail.example"]  # not the reviewer, member or outsider
    assert mail.subject == "Budget Watched at 100% (Acme)"
    assert "reached 100%" in mail.body and "500 tokens" in mail.body
    assert "https://proctor.example/t/acme/costs/budgets/" in mail.body


def test_a_worker_emails_and_delivers_as_runs_spend(cast, receiver, start_worker, tmp_path):  # noqa: F811
    webhook_create(tenant=cast.acme, url=receiver.url, events=["budget.threshold"], actor=cast.admin)
    watched(cast)
    mail = tmp_path / "mail"
    start_worker(env={"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(mail),
                      "WEBHOOK_ALLOW_HTTP": "1", "MODEL_MAX_OUTPUT_TOKENS": "20",
                      "DEMO_PRICED_AS": "openai:gpt-4o-mini", "CONSOLE_URL": "https://proctor.example"})

    def mails() -> str:
        return "".join(path.read_text() for path in mail.glob("*.log")) if mail.exists() else ""

    run_start(tenant=cast.acme, agent=make_looper(cast.acme), goal="Call noop 6 times", requested_by=cast.member)
    wait_for(lambda: mails().count("Subject: Budget Watched at") == 2 and len(receiver.received) == 2, 60,
             interval=0.3, message="two emails and two webhook deliveries")
    assert "To: ada@mail.example, finn@mail.example" in mails() or "finn@mail.example" in mails()
    assert sorted(json.loads(body)["threshold"] for _, body in receiver.received) == [50, 100]
