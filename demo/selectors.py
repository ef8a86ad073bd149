"""Reads for the Demo systems page."""

from __future__ import annotations

from demo.models import CalendarBooking, CrmAccount, CrmNote, EmailMessage, Invoice


def demo_systems(*, tenant) -> dict:
    return {
        "accounts": CrmAccount.objects.for_tenant(tenant)[:50],
        "notes": CrmNote.objects.for_tenant(tenant).select_related("account").order_by("-at")[:50],
        "drafts": EmailMessage.objects.for_tenant(tenant).filter(sent_at__isnull=True).select_related("run").order_by("-created_at")[:50],
        "outbox": EmailMessage.objects.for_tenant(tenant).filter(sent_at__isnull=False).select_related("run").order_by("-sent_at")[:50],
        "bookings": CalendarBooking.objects.for_tenant(tenant).order_by("-starts_at")[:50],
        "invoices": Invoice.objects.for_tenant(tenant).select_related("account").order_by("-created_at")[:50],
    }
