"""Approval notifications, each with a deep link: email (Django's email backend; the console backend
in dev) to reviewers for new and overdue requests and to the requester for the decision, and the
tenant's outgoing webhook, signed with HMAC-SHA256 of the body (X-Proctor-Signature: sha256=…),
sent through approvals.outbound (never to the server's own network)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from django.conf import settings
from django.core.mail import send_mass_mail
from django.urls import reverse

from approvals import outbound
from approvals.models import ApprovalRequest
from console.models import Membership
from console.roles import SECTION_ROLES

REVIEWERS = SECTION_ROLES["approvals"]


def _link(approval: ApprovalRequest, *, queue: bool) -> str:
    slug = approval.tenant.slug
    if queue:
        return f"{settings.CONSOLE_URL}{reverse('approvals', args=[slug])}?id={approval.pk}"
    return f"{settings.CONSOLE_URL}{reverse('run_detail', args=[slug, approval.run.number])}"


def _addresses(approval: ApprovalRequest, roles) -> list[str]:
    people = Membership.objects.for_tenant(approval.tenant_id).filter(role__in=roles).select_related("user")
    # Not the requester when the policy keeps them from deciding.
    return sorted({m.user.email for m in people
                   if m.user.email and (approval.allow_self_approval or m.user_id != approval.requested_by_id)})


def approval_notify(*, approval_id: int, event: str) -> int:
    """Send the emails for ``event`` (requested, escalated, decided, assigned); returns how many went out.
    By id alone: a system task handed an id by the tenant's own transaction; everything after is scoped
    to the request's tenant."""
    approval = ApprovalRequest.objects.select_related("tenant", "run", "requested_by", "decided_by", "assignee").filter(
        pk=approval_id).first()
    if approval is None:
        return 0
    what = {"plan": "its plan", "question": "an answer",
            "budget": f"more of the budget {approval.arguments.get('budget', '')}"}.get(approval.kind, approval.tool)
    subject_tail = f"{what} in run #{approval.run.number} ({approval.tenant.name})"
    if event == "requested":
        recipients = _addresses(approval, REVIEWERS)
        subject = f"{'Answer needed' if approval.kind == 'question' else 'Approval needed'}: {subject_tail}"
        asks = {"plan": f"The agent proposes a plan of {len(approval.arguments.get('steps', []))} steps.",
                "question": f"The agent asks: {approval.arguments.get('question', '')}",
                "budget": f"The budget {approval.arguments.get('budget', '')} is used up; the run waits for a "
                          f"decision to extend it."}.get(
            approval.kind, f"The agent wants to run {approval.tool} (risk {approval.risk}).")
        body = (f"{asks}\nWhy: {approval.reason or '-'}\n"
                f"Policy: {approval.policy}\nDue: {approval.due_at:%Y-%m-%d %H:%M UTC}\n\nDecide: {_link(approval, queue=True)}\n")
    elif event == "escalated":
        recipients = _addresses(approval, (approval.escalate_to_role,))
        subject = f"Overdue approval: {subject_tail}"
        body = (f"Nobody has decided on {approval.tool} since {approval.created_at:%Y-%m-%d %H:%M UTC}; it was due "
                f"{approval.due_at:%H:%M UTC}.\n\nDecide: {_link(approval, queue=True)}\n")
    elif event == "assigned":
        recipients = [approval.assignee.email] if approval.assignee and approval.assignee.email else []
        subject = f"Assigned to you: {subject_tail}"
        body = (f"You are asked to decide on {approval.tool} (risk {approval.risk}).\nWhy: {approval.reason or '-'}\n"
                f"Due: {approval.due_at:%Y-%m-%d %H:%M UTC}\n\nDecide: {_link(approval, queue=True)}\n")
    elif event == "decided":
        recipients = [approval.requested_by.email] if approval.requested_by and approval.requested_by.email else []
        who = approval.decided_by.username if approval.decided_by else "policy"
        subject = f"{approval.get_status_display()}: {subject_tail}"
        body = (f"{approval.tool} was {approval.status} by {who}."
                + (f"\nReason: {approval.decision_note}" if approval.decision_note else "")
                + f"\n\nThe run: {_link(approval, queue=False)}\n")
    else:
        raise ValueError(f"unknown notification {event!r}")
    if not recipients:
        return 0
    return send_mass_mail([(subject, body, settings.DEFAULT_FROM_EMAIL, [address]) for address in recipients],
                          fail_silently=False)


# --- The outgoing webhook -----------------------------------------------------------------------------

WEBHOOK_EVENTS = {"requested": "approval.requested", "decided": "approval.decided", "escalated": "approval.escalated"}


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def approval_webhook_deliver(*, approval_id: int, event: str) -> str:
    """POST the event to the tenant's webhook, if any (approvals.outbound: https, public addresses only, no
    redirects). Returns and keeps the outcome's class; raises OSError when worth retrying (the task retries).
    By id alone, as approval_notify; the webhook is the request's tenant's."""
    from approvals.models import ApprovalWebhook

    approval = ApprovalRequest.objects.select_related("tenant", "run", "decided_by").filter(pk=approval_id).first()
    hook = ApprovalWebhook.objects.for_tenant(approval.tenant_id).filter(enabled=True).first() if approval else None
    if hook is None or event not in WEBHOOK_EVENTS:
        return "no webhook"
    body = json.dumps({
        "event": WEBHOOK_EVENTS[event], "tenant": approval.tenant.slug,
        "approval": {"id": approval.pk, "run": approval.run.number, "tool": approval.tool, "risk": approval.risk,
                     "status": approval.status, "arguments": approval.arguments,
                     "approved_arguments": approval.approved_arguments, "policy": approval.policy,
                     "decided_by": approval.decided_by.username if approval.decided_by else None,
                     "note": approval.decision_note},
        "link": _link(approval, queue=event != "decided"),
    }, sort_keys=True).encode()
    delivery = outbound.post(hook.url, body, headers={
        "Content-Type": "application/json", "User-Agent": "Proctor-Webhook/1", "X-Proctor-Event": WEBHOOK_EVENTS[event],
        "X-Proctor-Delivery": str(uuid.uuid4()), "X-Proctor-Signature": signature(hook.secret, body)})
    outcome = f"{WEBHOOK_EVENTS[event]}: {delivery.outcome}"
    ApprovalWebhook.objects.for_tenant(hook.tenant_id).filter(pk=hook.pk).update(last_status=outcome[:200])
    if delivery.retry:
        raise OSError(outcome)
    return outcome
