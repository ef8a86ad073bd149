"""Approval notifications by email (Django's email backend; the console backend in dev), each with a
deep link: reviewers hear of new and overdue requests, the requester hears the decision."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mass_mail

from approvals.models import ApprovalRequest
from console.models import Membership, Role

REVIEWERS = (Role.REVIEWER, Role.ADMIN)


def _link(approval: ApprovalRequest, *, queue: bool) -> str:
    slug = approval.tenant.slug
    if queue:
        return f"{settings.CONSOLE_URL}/t/{slug}/approvals/?id={approval.pk}"
    return f"{settings.CONSOLE_URL}/t/{slug}/runs/{approval.run_id}/"


def _addresses(approval: ApprovalRequest, roles) -> list[str]:
    people = Membership.objects.filter(tenant_id=approval.tenant_id, role__in=roles).select_related("user")
    # Not the requester when the policy keeps them from deciding.
    return sorted({m.user.email for m in people
                   if m.user.email and (approval.allow_self_approval or m.user_id != approval.requested_by_id)})


def approval_notify(*, approval_id: int, event: str) -> int:
    """Send the emails for ``event`` (requested, escalated, decided); returns how many went out."""
    approval = ApprovalRequest.objects.select_related("tenant", "requested_by", "decided_by").filter(
        pk=approval_id).first()
    if approval is None:
        return 0
    subject_tail = f"{approval.tool} in run {approval.run_id} ({approval.tenant.name})"
    if event == "requested":
        recipients = _addresses(approval, REVIEWERS)
        subject = f"Approval needed: {subject_tail}"
        body = (f"The agent wants to run {approval.tool} (risk {approval.risk}).\nWhy: {approval.reason or '-'}\n"
                f"Policy: {approval.policy}\nDue: {approval.due_at:%Y-%m-%d %H:%M UTC}\n\nDecide: {_link(approval, queue=True)}\n")
    elif event == "escalated":
        recipients = _addresses(approval, (approval.escalate_to_role,))
        subject = f"Overdue approval: {subject_tail}"
        body = (f"Nobody has decided on {approval.tool} since {approval.created_at:%Y-%m-%d %H:%M UTC}; it was due "
                f"{approval.due_at:%H:%M UTC}.\n\nDecide: {_link(approval, queue=True)}\n")
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
