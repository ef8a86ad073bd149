"""The reviewer queue: the list, one request's detail, decisions. Thin: access, selector, service."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from agents.selectors import run_events_after, run_plan
from approvals.models import ApprovalRequest
from approvals.selectors import QUEUE_PAGE, SORTS, approval_list, queue_filters
from approvals.services import REFUSAL_STATUS, DecisionRefused, approval_decide
from console.access import tenant_access

DECISIONS = {"approve", "reject", "edit"}


def _queue_url(tenant_slug: str, approval_id: int) -> str:
    return f"{reverse('approvals', args=[tenant_slug])}?id={approval_id}"


def _detail_context(approval: ApprovalRequest | None) -> dict:
    if approval is None:
        return {"approval": None}
    run = approval.run
    events = run_events_after(run=run, after=max(0, run.event_seq - 12), limit=12)
    proposed, approved = approval.arguments, approval.approved_arguments
    changes = [{"field": key, "proposed": proposed.get(key), "approved": approved.get(key)}
               for key in sorted(set(proposed) | set(approved)) if proposed.get(key) != approved.get(key)] if approved else []
    return {"approval": approval, "run": run, "plan": run_plan(run=run), "events": events, "changes": changes,
            "arguments_json": json.dumps(approval.arguments_to_run, indent=2, ensure_ascii=False),
            "decisions": list(approval.decisions.select_related("actor"))}


def _approval(membership, approval_id: int) -> ApprovalRequest:
    approval = ApprovalRequest.objects.for_tenant(membership.tenant).select_related(
        "run__agent", "decided_by", "tool_invocation").filter(pk=approval_id).first()
    if approval is None:
        raise Http404("No such approval request")
    return approval


@login_required
def queue(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="approvals")
    request.section = "approvals"
    filters = queue_filters(request.GET)
    approvals = approval_list(tenant=membership.tenant, status="open", limit=QUEUE_PAGE, **filters)
    selected_id = request.GET.get("id", "")
    selected = (_approval(membership, int(selected_id)) if selected_id.isdigit()
                else approvals[0] if approvals else None)
    return render(request, "approvals/queue.html", {"approvals": approvals, "filters": filters, "sorts": list(SORTS),
                                                    "page_size": QUEUE_PAGE, "selected_id": getattr(selected, "pk", None),
                                                    **_detail_context(selected)})


@login_required
def detail(request: HttpRequest, tenant_slug: str, approval_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="approvals")
    request.section = "approvals"
    approval = _approval(membership, approval_id)
    if not request.htmx:
        return redirect(_queue_url(tenant_slug, approval.pk))
    return render(request, "approvals/partials/detail.html", _detail_context(approval))


@login_required
@require_POST
def decide(request: HttpRequest, tenant_slug: str, approval_id: int) -> HttpResponse:
    """A decision from the queue's detail pane, or from the run page (``from=run``)."""
    membership = tenant_access(request, tenant_slug, section="approvals")
    approval = _approval(membership, approval_id)
    decision, error, status = request.POST.get("decision", ""), "", 200
    arguments = None
    if decision not in DECISIONS:
        error, status = "Choose approve, reject or edit.", 422
    elif decision == "edit":
        try:
            arguments = json.loads(request.POST.get("arguments", ""))
            if not isinstance(arguments, dict):
                raise ValueError
        except ValueError:
            error, status = "The edited arguments must be a JSON object, e.g. {\"to\": \"dana@acme.example\"}.", 422
    if not error:
        try:
            approval_decide(approval=approval, approve=decision != "reject", actor=request.user,
                            note=request.POST.get("note", ""), arguments=arguments,
                            client_key=request.POST.get("client_key", ""))
        except DecisionRefused as refused:
            error, status = str(refused), REFUSAL_STATUS[refused.kind]
    if request.POST.get("from") == "run":  # the run card: it updates live, so only a refusal needs saying
        if request.htmx:
            return HttpResponse(error, status=status)
        if error:
            messages.error(request, error)
        return redirect("run_detail", tenant_slug, approval.run_id)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(_queue_url(tenant_slug, approval.pk))
    context = {**_detail_context(_approval(membership, approval_id)), "error": error}
    if error and decision == "edit":
        context["arguments_json"] = request.POST.get("arguments", "")  # keep what they typed
    return render(request, "approvals/partials/detail.html", context, status=status)


@login_required
def policies(request: HttpRequest, tenant_slug: str, policy_id: int | None = None) -> HttpResponse:
    """Admin: the tenant's approval policies; create, and with ``policy_id`` change or delete one."""
    from approvals.forms import PolicyForm
    from approvals.models import ApprovalPolicy
    from approvals.selectors import policy_list
    from approvals.services import approval_policy_delete, approval_policy_save

    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    editing = None
    if policy_id is not None:
        editing = ApprovalPolicy.objects.for_tenant(membership.tenant).filter(pk=policy_id).first()
        if editing is None:
            raise Http404("No such policy")
    if request.method == "POST" and request.POST.get("delete") and editing is not None:
        approval_policy_delete(policy=editing, actor=request.user)
        return redirect("approval_policies", tenant_slug)
    form = PolicyForm(request.POST or None, instance=editing, tenant=membership.tenant)
    if request.method == "POST" and form.is_valid():
        approval_policy_save(form=form, tenant=membership.tenant, actor=request.user)
        return redirect("approval_policies", tenant_slug)
    from approvals.models import ApprovalWebhook

    return render(request, "approvals/policies.html", {"form": form, "editing": editing,
                                                       "policies": policy_list(tenant=membership.tenant),
                                                       "webhook": ApprovalWebhook.objects.for_tenant(
                                                           membership.tenant).first()},
                  status=422 if request.method == "POST" else 200)


@login_required
@require_POST
def webhook(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """Admin: set or remove the approvals webhook; the signing secret is shown once."""
    from django import forms as django_forms
    from django.contrib import messages

    from approvals.services import approval_webhook_set

    membership = tenant_access(request, tenant_slug, section="admin")
    url = request.POST.get("url", "").strip()
    if url:
        try:
            django_forms.URLField(max_length=500, assume_scheme="https").clean(url)
        except django_forms.ValidationError:
            messages.error(request, "Give the webhook a full http(s):// URL.")
            return redirect("approval_policies", tenant_slug)
    hook, secret = approval_webhook_set(tenant=membership.tenant, url=url, actor=request.user)
    if hook:
        messages.success(request, f"Webhook set. Its signing secret, shown only now: {secret}")
    else:
        messages.success(request, "Webhook removed.")
    return redirect("approval_policies", tenant_slug)
