"""The reviewer queue: the list, one request's detail, decisions. Thin: access, selector, service."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents.selectors import run_events_after, run_plan
from approvals.models import ApprovalRequest
from approvals.selectors import SORTS, approval_list
from approvals.services import DecisionRefused, approval_decide
from console.access import tenant_access

DECISIONS = {"approve", "reject", "edit"}
QUEUE_PAGE = 50  # the head of the sorted queue; filters narrow it


def _filters(request) -> dict:
    get = request.GET
    risk = get.get("min_risk", "")
    return {"sort": get.get("sort", "risk") if get.get("sort") in SORTS else "risk", "tool": get.get("tool", "")[:100],
            "agent": get.get("agent", "")[:60], "min_risk": int(risk) if risk.isdigit() else 0}


def _detail_context(membership, approval: ApprovalRequest | None) -> dict:
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
    filters = _filters(request)
    approvals = approval_list(tenant=membership.tenant, status="open", limit=QUEUE_PAGE, **filters)
    selected_id = request.GET.get("id", "")
    selected = (_approval(membership, int(selected_id)) if selected_id.isdigit()
                else approvals[0] if approvals else None)
    return render(request, "approvals/queue.html", {"approvals": approvals, "filters": filters, "sorts": list(SORTS),
                                                    "page_size": QUEUE_PAGE,
                                                    **_detail_context(membership, selected)})


@login_required
def detail(request: HttpRequest, tenant_slug: str, approval_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="approvals")
    request.section = "approvals"
    approval = _approval(membership, approval_id)
    if not request.htmx:
        return redirect(f"{request.path.rsplit('/', 2)[0]}/?id={approval.pk}")
    return render(request, "approvals/partials/detail.html", _detail_context(membership, approval))


@login_required
@require_POST
def decide(request: HttpRequest, tenant_slug: str, approval_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="approvals")
    approval = _approval(membership, approval_id)
    decision, error = request.POST.get("decision", ""), ""
    arguments = None
    if decision not in DECISIONS:
        error = "Choose approve, reject or edit."
    elif decision == "edit":
        try:
            arguments = json.loads(request.POST.get("arguments", ""))
            if not isinstance(arguments, dict):
                raise ValueError
        except ValueError:
            error = "The edited arguments must be a JSON object, e.g. {\"to\": \"dana@acme.example\"}."
    if not error:
        try:
            approval_decide(approval=approval, approve=decision != "reject", actor=request.user,
                            note=request.POST.get("note", ""), arguments=arguments,
                            client_key=request.POST.get("client_key", ""))
        except DecisionRefused as refused:
            error = str(refused)
    approval = _approval(membership, approval_id)
    context = {**_detail_context(membership, approval), "error": error}
    if error and arguments is not None or decision == "edit" and error:
        context["arguments_json"] = request.POST.get("arguments", "")
    status = 200 if not error else 409 if "Already" in error else 422
    if request.htmx:
        return render(request, "approvals/partials/detail.html", context, status=status)
    return redirect(f"/t/{tenant_slug}/approvals/?id={approval.pk}")


@login_required
def policies(request: HttpRequest, tenant_slug: str, policy_id: int | None = None) -> HttpResponse:
    """Admin: the tenant's approval policies; create, change (?edit=<id>) and delete."""
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
