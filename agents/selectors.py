"""Reads for runs, events and the demo systems."""

from __future__ import annotations

from django.db.models import QuerySet

from agents.models import Agent, CalendarBooking, CrmAccount, CrmNote, EmailMessage, Invoice, PlanStep, Run, RunEvent

EVENTS_PAGE = 500


def agent_list(*, tenant) -> QuerySet[Agent]:
    return Agent.objects.for_tenant(tenant)


def run_list(*, tenant, status: str = "", limit: int = 100) -> list[Run]:
    runs = Run.objects.for_tenant(tenant).select_related("agent", "requested_by").order_by("-created_at", "-id")
    if status:
        runs = runs.filter(status=status)
    return list(runs[:limit])


def run_get(*, tenant, run_id: int) -> Run:
    return Run.objects.for_tenant(tenant).select_related("agent", "requested_by", "control_by").get(pk=run_id)


def run_events_after(*, run: Run, after: int, limit: int = EVENTS_PAGE) -> list[RunEvent]:
    return list(RunEvent.objects.filter(run=run, seq__gt=after).order_by("seq")[:limit])


def run_plan(*, run: Run) -> list[PlanStep]:
    return list(PlanStep.objects.filter(run=run))


def demo_systems(*, tenant) -> dict:
    return {
        "accounts": CrmAccount.objects.for_tenant(tenant)[:50],
        "notes": CrmNote.objects.for_tenant(tenant).select_related("account").order_by("-at")[:50],
        "drafts": EmailMessage.objects.for_tenant(tenant).filter(sent_at__isnull=True).order_by("-created_at")[:50],
        "outbox": EmailMessage.objects.for_tenant(tenant).filter(sent_at__isnull=False).order_by("-sent_at")[:50],
        "bookings": CalendarBooking.objects.for_tenant(tenant).order_by("-starts_at")[:50],
        "invoices": Invoice.objects.for_tenant(tenant).select_related("account").order_by("-created_at")[:50],
    }
