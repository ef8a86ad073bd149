"""The demo tools, backed by the demo systems' real tables (see the Demo systems page). They register
into the runtime's tool registry when the demo app is ready (demo.apps)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone
from pydantic import BaseModel, EmailStr, Field

from agents.tools.registry import ToolContext, ToolError, tool
from demo.models import CalendarBooking, CrmAccount, CrmNote, EmailMessage, Invoice


def _account(context: ToolContext, key: str) -> CrmAccount:
    account = CrmAccount.objects.for_tenant(context.tenant).filter(key=key.strip().upper()).first()
    if account is None:
        raise ToolError(f"No account with key '{key}'. Use crm.search_accounts to find the key.", error_type="not_found")
    return account


class SearchAccounts(BaseModel):
    query: str = Field(min_length=1, max_length=200, description="Part of an account name or key")
    limit: int = Field(default=5, ge=1, le=25)


@tool("crm.search_accounts", description="Find CRM accounts by name or key.", risk=0, idempotent=True,
      transactional=True)
def search_accounts(context: ToolContext, args: SearchAccounts) -> dict:
    rows = CrmAccount.objects.for_tenant(context.tenant).filter(Q(name__icontains=args.query) | Q(key__icontains=args.query))
    return {"accounts": [{"key": a.key, "name": a.name} for a in rows[: args.limit]]}


class GetAccount(BaseModel):
    key: str = Field(min_length=1, max_length=20, description="Account key, e.g. ACME-042")


@tool("crm.get_account", description="Read one CRM account with its notes.", risk=0, idempotent=True,
      transactional=True)
def get_account(context: ToolContext, args: GetAccount) -> dict:
    account = _account(context, args.key)
    return {
        "key": account.key, "name": account.name, "success_manager": account.success_manager,
        "arr_usd": account.arr_usd, "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
        "health": account.health,
        "notes": [n.body for n in account.notes.order_by("-at")[:10]],
    }


class WriteNote(BaseModel):
    account_key: str = Field(max_length=20)
    body: str = Field(min_length=1, max_length=5000)


@tool("notes.write", description="Add a note to a CRM account.", risk=1, transactional=True)
def write_note(context: ToolContext, args: WriteNote) -> dict:
    note = CrmNote.objects.create(tenant=context.tenant, account=_account(context, args.account_key), body=args.body,
                                  author="agent", run=context.run)
    return {"note_id": note.id}


class Email(BaseModel):
    to: EmailStr
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20000)


@tool("email.draft", description="Save an email draft (nothing is sent).", risk=2, transactional=True,
      preview="demo/previews/email.html")
def draft_email(context: ToolContext, args: Email) -> dict:
    draft = EmailMessage.objects.create(tenant=context.tenant, run=context.run, to=args.to, subject=args.subject,
                                        body=args.body)
    return {"draft_id": draft.id}


@tool("email.send", description="Send an email now (it goes to the outbox and leaves).", risk=3,
      transactional=True, preview="demo/previews/email.html")
def send_email(context: ToolContext, args: Email) -> dict:
    sent = EmailMessage.objects.create(tenant=context.tenant, run=context.run, to=args.to, subject=args.subject,
                                       body=args.body, sent_at=timezone.now(), idempotency_key=context.idempotency_key)
    return {"message_id": sent.id, "sent_to": args.to}


class Booking(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    attendees: list[EmailStr] = Field(min_length=1, max_length=20)
    starts_at: datetime
    minutes: int = Field(default=30, ge=5, le=480)


@tool("calendar.book", description="Book a calendar meeting and invite attendees.", risk=3,
      transactional=True, preview="demo/previews/booking.html")
def book_meeting(context: ToolContext, args: Booking) -> dict:
    booking = CalendarBooking.objects.create(
        tenant=context.tenant, run=context.run, title=args.title, attendees=[str(a) for a in args.attendees],
        starts_at=args.starts_at, minutes=args.minutes, idempotency_key=context.idempotency_key,
    )
    return {"booking_id": booking.id}


class CreateInvoice(BaseModel):
    account_key: str = Field(max_length=20)
    amount_usd: Decimal = Field(gt=0, le=10_000_000, decimal_places=2)
    memo: str = Field(default="", max_length=300)


@tool("billing.create_invoice", description="Create and issue an invoice to an account.", risk=4,
      transactional=True, preview="demo/previews/invoice.html")
def create_invoice(context: ToolContext, args: CreateInvoice) -> dict:
    invoice = Invoice.objects.create(tenant=context.tenant, run=context.run, account=_account(context, args.account_key),
                                     amount_usd=args.amount_usd, memo=args.memo, idempotency_key=context.idempotency_key)
    return {"invoice_id": invoice.id, "amount_usd": str(invoice.amount_usd)}


class Noop(BaseModel):
    n: int = 0


@tool("noop", description="Does nothing (benchmarks and tests).", risk=0, idempotent=True, transactional=True)
def noop(context: ToolContext, args: Noop) -> dict:
    return {"n": args.n}
