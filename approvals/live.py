"""Live approvals: "the tenant's queue changed" goes to one group per tenant after commit; every
socket re-renders what its viewer sees (the open count, and on the queue page the list with the
viewer's own filters) from the database, with the page's own partials."""

from __future__ import annotations

from dataclasses import dataclass

from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string

from console import aio


def queue_group(tenant_id: int) -> str:
    return f"approvals-{tenant_id}"


# A decision's emails and webhook wait this long: the run's step, enqueued by the same commit, has the worker to
# itself as it resumes (the two ran side by side on a worker's threads, and the notice's reads, ~4-6 ms of
# interpreter time, slowed the approved tool's step: bench p3). Nobody waits on a notice to the second.
DECIDED_NOTICE_DELAY = 1.0  # seconds


@dataclass(frozen=True)
class Audience:
    """Who a decision's notice would reach, read with the request's row lock: whether its tenant has an enabled
    webhook, and whether the person who started the run has an email address."""

    webhook: bool
    requester_email: bool


def notify_on_commit(approval, event: str, audience: Audience | None = None) -> None:
    """Emails and the webhook go out from a worker after commit, never inside the decision; the
    webhook task only for a tenant that has a webhook for the event, and a decision's notice only if
    somebody gets it (the requester's email, or the webhook). ``audience``: as read with the lock (else read here)."""
    from approvals.models import ApprovalWebhook
    from approvals.notifications import WEBHOOK_EVENTS
    from approvals.tasks import notify, webhook

    if audience is None:  # not read with the lock: the requester's address is the email task's to check
        audience = Audience(webhook=event in WEBHOOK_EVENTS and ApprovalWebhook.objects.for_tenant(
            approval.tenant_id).filter(enabled=True).exists(), requester_email=True)
    hooked = event in WEBHOOK_EVENTS and audience.webhook
    emailed = event != "decided" or audience.requester_email
    if not (emailed or hooked):
        return
    countdown = DECIDED_NOTICE_DELAY if event == "decided" else None
    transaction.on_commit(lambda: (
        emailed and notify.apply_async((approval.id, event), countdown=countdown),
        hooked and webhook.apply_async((approval.id, event), countdown=countdown)))


def publish_queue_changed_on_commit(tenant_id: int) -> None:
    transaction.on_commit(lambda: aio.submit(
        get_channel_layer().group_send(queue_group(tenant_id), {"type": "queue.changed"}), f"publish queue {tenant_id}"))


def render_queue_update(*, membership, filters: dict | None) -> dict:
    """The open count and, with ``filters`` (the queue page's socket), the viewer's list; the page
    marks the selected item itself (the one its detail pane shows)."""
    from approvals.selectors import QUEUE_PAGE, approval_list, open_count, queue_query

    update = {"count": open_count(tenant=membership.tenant)}
    if filters is not None:
        approvals = approval_list(tenant=membership.tenant, status="open", limit=QUEUE_PAGE, viewer=membership, **filters)
        update["list"] = render_to_string("approvals/partials/queue_list.html",
                                          {"approvals": approvals, "membership": membership,
                                                                         "queue_query": queue_query(filters)})
    return update
