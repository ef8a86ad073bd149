"""A budget's threshold crossed (recorded once per period as a BudgetAlert) told to people and systems: an
email to the tenant's finance and admin members, from a worker after commit; and a ``budget.threshold``
delivery to each run webhook subscribed to it (webhooks: signed, checked at send time, retried), made in
the alert's own transaction."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from agents.models import Run
from console.models import Membership, Tenant
from console.roles import SECTION_ROLES
from costs.models import BudgetAlert
from webhooks.models import RunEvent
from webhooks.services import event_deliveries_record

FINANCE = SECTION_ROLES["costs"]


def alert_announce(alert_id: int, *, budget, period_key: str, threshold: int, usd, tokens: int,
                   run_id: int | None) -> None:
    """In the alert's transaction: the webhook deliveries, and the email enqueued for after commit."""
    from costs.tasks import budget_alert_email

    slug = Tenant.objects.filter(pk=budget.tenant_id).values_list("slug", flat=True).get()
    number = Run.objects.for_tenant(budget.tenant_id).filter(pk=run_id).values_list("number", flat=True).first()
    payload = {"event": RunEvent.BUDGET_THRESHOLD.value, "tenant": slug, "threshold": threshold, "period": period_key,
               "budget": {"id": budget.pk, "name": budget.name, "scope": budget.scope, "period": budget.period,
                          "action": budget.action,
                          "limit_usd": None if budget.limit_usd is None else str(budget.limit_usd),
                          "limit_tokens": budget.limit_tokens},
               "spent_usd": str(usd), "spent_tokens": tokens, "run": {"number": number} if number else None,
               "link": _budgets_link(slug)}
    event_deliveries_record(tenant_id=budget.tenant_id, event=RunEvent.BUDGET_THRESHOLD, run_id=run_id if number else None,
                            payload_of=lambda delivery_id: {**payload, "id": delivery_id})
    transaction.on_commit(lambda: budget_alert_email.delay(alert_id))


def _budgets_link(slug: str) -> str:
    return f"{settings.CONSOLE_URL}{reverse('costs_budgets', args=[slug])}"


def budget_alert_email_send(*, alert_id: int) -> int:
    """The alert's email to the tenant's finance and admin members; returns how many it went to. Claimed
    first (a conditional update), so a task delivered twice sends it once."""
    if not BudgetAlert.objects.filter(pk=alert_id, emailed_at__isnull=True).update(emailed_at=timezone.now()):
        return 0
    alert = BudgetAlert.objects.select_related("budget", "tenant").get(pk=alert_id)
    people = Membership.objects.for_tenant(alert.tenant).filter(role__in=FINANCE).select_related("user")
    recipients = sorted({m.user.email for m in people if m.user.email})
    if not recipients:
        return 0
    budget = alert.budget
    limit = " and ".join(part for part in (
        f"${budget.limit_usd:,.4f}" if budget.limit_usd is not None else "",
        f"{budget.limit_tokens:,} tokens" if budget.limit_tokens else "") if part)
    at_limit = {"stop": "runs it covers stop before their next model call",
                "ask": "runs it covers wait for a person to extend it",
                "alert": "nothing stops (alert only)"}.get(budget.action, budget.action)
    body = (f"The budget “{budget.name}” reached {alert.threshold}% in {alert.period_key}.\n"
            f"Spent: ${alert.spent_usd:,.4f}" + (f", {alert.spent_tokens:,} tokens" if alert.spent_tokens else "")
            + f"\nLimit: {limit}\nAt 100%: {at_limit}.\n\nBudgets: {_budgets_link(alert.tenant.slug)}\n")
    subject = f"Budget {budget.name} at {alert.threshold}% ({alert.tenant.name})"
    return send_mail(subject, body, None, recipients) and len(recipients)
