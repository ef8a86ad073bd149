"""The run webhooks page (admins): add (secret shown once) and remove webhooks; the delivery log with retry."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from console.access import tenant_access
from console.reveal import reveal_once, revealed
from webhooks.forms import WebhookForm
from webhooks.models import Delivery, RunWebhook
from webhooks.selectors import delivery_log, webhook_list
from webhooks.services import WebhookRefused, delivery_retry, webhook_create, webhook_delete


@never_cache  # a new webhook's secret is on this page once
@login_required
def webhooks(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            hook, secret = webhook_create(tenant=membership.tenant, url=form.cleaned_data["url"],
                                          events=form.cleaned_data["events"], actor=request.user)
        except WebhookRefused as error:
            form.add_error("url", str(error))
        else:
            reveal_once(request, tenant=membership.tenant, what="run_webhook_secret",
                        value={"url": hook.url, "secret": secret})
            return redirect("admin_webhooks", tenant_slug)
    return render(request, "webhooks/webhooks.html", {
        "form": form, "webhooks": webhook_list(tenant=membership.tenant),
        "deliveries": delivery_log(tenant=membership.tenant),
        "issued": revealed(request, tenant=membership.tenant, what="run_webhook_secret")})


@login_required
@require_POST
def webhook_remove(request: HttpRequest, tenant_slug: str, webhook_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    hook = get_object_or_404(RunWebhook.objects.for_tenant(membership.tenant), pk=webhook_id)
    webhook_delete(hook=hook, actor=request.user)
    messages.success(request, f"Webhook {hook.url} removed.")
    return redirect("admin_webhooks", tenant_slug)


@login_required
@require_POST
def delivery_resend(request: HttpRequest, tenant_slug: str, delivery_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    delivery = get_object_or_404(Delivery.objects.for_tenant(membership.tenant).select_related("webhook"),
                                 pk=delivery_id)
    delivery_retry(delivery=delivery, actor=request.user)
    about = f" for run #{delivery.run_number}" if delivery.run_number else ""
    messages.success(request, f"{delivery.event}{about} is being sent again.")
    return redirect("admin_webhooks", tenant_slug)
