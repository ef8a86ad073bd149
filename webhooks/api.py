"""Run webhooks over the API (admin scope and role): the same services as the page."""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from console.api_auth import token_scopes
from console.api_errors import errors
from webhooks.models import ALL_EVENTS, Delivery, RunWebhook
from webhooks.selectors import delivery_log, webhook_list
from webhooks.services import WebhookRefused, delivery_retry, webhook_create, webhook_delete

router = Router(tags=["webhooks"], auth=token_scopes("admin", section="admin"))


class WebhookIn(Schema):
    url: str = Field(max_length=500, examples=["https://hooks.example.com/proctor"],
                     description="https; never an address inside the server's network (checked again at send time)")
    events: list[str] = Field(default=ALL_EVENTS, max_length=len(ALL_EVENTS) * 2,
                              description="Any of: " + ", ".join(ALL_EVENTS))


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime


class IssuedWebhookOut(WebhookOut):
    secret: str = Field(description="Signs every delivery (X-Proctor-Signature: sha256=HMAC of the body): shown "
                                    "this once")


class DeliveryOut(Schema):
    id: int
    webhook: int
    event: str
    run: int | None = Field(description="The run's number in the tenant (none for an event of no one run)")
    status: str
    outcome: str
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None

    @staticmethod
    def resolve_webhook(delivery: Delivery) -> int:
        return delivery.webhook_id

    @staticmethod
    def resolve_run(delivery: Delivery) -> int | None:
        return delivery.run_number


@router.get("/webhooks", response={200: list[WebhookOut], **errors()}, summary="The tenant's run webhooks")
def list_webhooks(request):
    return webhook_list(tenant=request.tenant)


@router.post("/webhooks", response={201: IssuedWebhookOut, **errors()},
             summary="Add a run webhook; its signing secret is returned once")
def create_webhook(request, body: WebhookIn):
    try:
        hook, secret = webhook_create(tenant=request.tenant, url=body.url, events=body.events,
                                      actor=request.api_token.created_by)
    except WebhookRefused as error:
        raise HttpError(422, str(error)) from None
    return Status(201, IssuedWebhookOut(id=hook.pk, url=hook.url, events=hook.events, enabled=hook.enabled,
                                        created_at=hook.created_at, secret=secret))


@router.delete("/webhooks/{webhook_id}", response={204: None, **errors(404)}, summary="Remove a run webhook")
def remove_webhook(request, webhook_id: int):
    hook = RunWebhook.objects.for_tenant(request.tenant).filter(pk=webhook_id).first()
    if hook is None:
        raise Http404
    webhook_delete(hook=hook, actor=request.api_token.created_by)
    return Status(204, None)


@router.get("/webhook-deliveries", response={200: list[DeliveryOut], **errors()},
            summary="The latest deliveries, newest first")
def list_deliveries(request, limit: int = 50):
    return delivery_log(tenant=request.tenant, limit=max(1, min(limit, 200)))


@router.post("/webhook-deliveries/{delivery_id}/retry", response={200: DeliveryOut, **errors(404)},
             summary="Send a delivery again")
def retry_delivery(request, delivery_id: int):
    delivery = Delivery.objects.for_tenant(request.tenant).select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404
    return delivery_retry(delivery=delivery, actor=request.api_token.created_by)
