"""The reviewer queue: the list, one request's detail, decisions. Thin: access, selector, service."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from agents.engine import plan_diff
from agents.selectors import run_events_after, run_plan
from agents.tools import tool_for
from approvals import outbound
from approvals.forms import PolicyForm, argument_errors, arguments_from_fields, json_problem, schema_fields
from approvals.models import ApprovalKind, ApprovalPolicy, ApprovalRequest, ApprovalWebhook
from approvals.selectors import (
    QUEUE_PAGE,
    SORTS,
    approval_get,
    approval_list,
    assignable_people,
    policy_list,
    queue_filters,
    queue_ids_around,
    queue_query,
)
from approvals.services import (
    REFUSAL_STATUS,
    DecisionRefused,
    approval_assign,
    approval_decision_take,
    approval_policy_delete,
    approval_policy_save,
    approval_webhook_set,
)
from console.access import tenant_access
from console.input import strict_int
from console.reveal import reveal_once, revealed


def _queue_url(tenant_slug: str, approval_id: int, query: str = "") -> str:
    return f"{reverse('approvals', args=[tenant_slug])}?{query + '&' if query else ''}id={approval_id}"


def _detail_context(approval: ApprovalRequest | None, *, edited: dict | None = None,
                    field_errors: dict | None = None) -> dict:
    """Everything the detail pane shows. ``edited``: what a refused edit sent, shown again to fix, with
    ``field_errors`` beside the fields they concern."""
    if approval is None:
        return {"approval": None}
    run = approval.run
    events = run_events_after(run=run, after=max(0, run.event_seq - 12), limit=12)
    proposed, approved = approval.arguments, approval.approved_arguments
    changes = [{"field": key, "proposed": proposed.get(key), "approved": approved.get(key)}
               for key in sorted(set(proposed) | set(approved)) if proposed.get(key) != approved.get(key)] if approved else []
    spec = tool_for(approval.tenant_id, approval.tool) if approval.kind == ApprovalKind.TOOL_CALL and approval.is_open else None
    values = edited if edited is not None else approval.arguments_to_run
    fields = schema_fields(spec.json_schema(), values) if spec else []
    for field in fields:
        field["error"] = (field_errors or {}).get(field["name"], "")
    context = {"approval": approval, "run": run, "plan": run_plan(run=run), "events": events, "changes": changes,
               "arguments_json": json.dumps(values, indent=2, ensure_ascii=False), "fields": fields,
               "first_invalid": next((f["name"] for f in fields if f["error"]), ""),
               "decisions": list(approval.decisions.all()),
               "people": assignable_people(tenant=approval.tenant_id) if approval.is_open else []}
    if approval.kind == ApprovalKind.PLAN:
        # A refused edit that left no step is shown as the plan it would have replaced, not as blank rows.
        typed = [step for step in values.get("steps", []) if str(step).strip()]
        context["plan_steps"] = typed or approval.arguments_to_run.get("steps", [])
        if approved is not None:
            context["plan_changes"] = plan_diff(proposed["steps"], approved["steps"])
    return context


def _approval(membership, approval_id: int, *, detail: bool = True) -> ApprovalRequest:
    approval = approval_get(tenant=membership.tenant, approval_id=approval_id, detail=detail)
    if approval is None:
        raise Http404("No such approval request")
    return approval


@login_required
def queue(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="approvals")
    request.section = "approvals"
    filters = queue_filters(request.GET)
    approvals = approval_list(tenant=membership.tenant, status="open", limit=QUEUE_PAGE, viewer=membership, **filters)
    # The pane's request is read as the detail view reads it (with its decisions), also when it is the list's first.
    selected_id = strict_int(request.GET.get("id", ""), 0)
    selected_id = selected_id if selected_id > 0 else approvals[0].pk if approvals else None
    selected = _approval(membership, selected_id) if selected_id is not None else None
    return render(request, "approvals/queue.html", {"approvals": approvals, "filters": filters, "sorts": list(SORTS),
                                                    "page_size": QUEUE_PAGE, "selected_id": getattr(selected, "pk", None),
                                                    "queue_query": queue_query(filters),
                                                    "filtered": any(filters[k] for k in ("tool", "agent", "min_risk", "mine")),
                                                    **_detail_context(selected)})


@login_required
def detail(request: HttpRequest, tenant_slug: str, approval_id: int) -> HttpResponse:
    """The pane of one request (htmx; the queue with it selected otherwise). ``changed=1``: asked again by
    the page because the request left the queue while shown (someone else decided it)."""
    membership = tenant_access(request, tenant_slug, section="approvals")
    request.section = "approvals"
    approval = _approval(membership, approval_id)
    if not request.htmx:
        return redirect(_queue_url(tenant_slug, approval.pk))
    return render(request, "approvals/partials/detail.html",
                  {**_detail_context(approval), "changed_elsewhere": request.GET.get("changed") == "1"
                   and not approval.is_open and approval.decided_by_id != request.user.pk})


# The event (HX-Trigger) of a decision answered with its note only: the page shows the pane it prefetched.
PREFETCHED_PANE_EVENT = "approvals:prefetched-pane"

WITHOUT_REASON = "Say why you reject it (the agent is told and can act on it), or tick “Reject without a reason”."


@login_required
@require_POST
def decide(request: HttpRequest, tenant_slug: str, approval_id: int) -> HttpResponse:
    """A decision from the queue's detail pane, or from the run page (``from=run``). From the queue, a
    decision taken moves the pane to the next request of the viewer's queue (the URL follows)."""
    membership = tenant_access(request, tenant_slug, section="approvals")
    approval = _approval(membership, approval_id, detail=False)  # the pane is read again after the decision
    decision, status, field_errors, extra = request.POST.get("decision", ""), 200, {}, {}
    arguments, error = _edited_arguments(approval, request.POST) if decision == "edit" else (None, "")
    if decision == "edit" and error:
        extra = {"json_error": error} if request.POST.get("form") == "json" else {}
    elif decision == "edit" and arguments is not None and request.POST.get("form") == "fields":
        field_errors = _field_errors(approval, arguments)
        error = "Some arguments are not valid; see the fields marked below." if field_errors else ""
    if decision == "reject" and approval.is_open and not request.POST.get("note", "").strip() \
            and not request.POST.get("without_reason"):
        error, extra = WITHOUT_REASON, {"reason_error": WITHOUT_REASON}
    filters = queue_filters(_current_query(request))
    decided = approval
    if error:
        status = 422
    else:
        try:
            decided = approval_decision_take(approval=approval, decision=decision, actor=request.user,
                                   note=request.POST.get("note", ""), arguments=arguments,
                                   answer=request.POST.get("answer", ""), client_key=request.POST.get("client_key", ""))
        except DecisionRefused as refused:
            error, status = str(refused), REFUSAL_STATUS[refused.kind]
            if refused.kind == "invalid" and request.POST.get("form") == "json":
                extra["json_error"] = error
    if request.POST.get("from") == "run":  # the run card: it updates live, so only a refusal needs saying
        if request.htmx:
            return HttpResponse(error, status=status)
        if error:
            messages.error(request, error)
        return redirect("run_detail", tenant_slug, approval.run.number)
    if error:
        if decision == "edit" and request.POST.get("form") == "json":
            extra.update(arguments_json=request.POST.get("arguments", ""), json_open=True)
        edited = arguments if isinstance(arguments, dict) else None  # keep what they typed
        return _pane_after_change(request, membership, approval.pk, error, status, edited=edited,
                                  field_errors=field_errors, edit_open=decision == "edit", **extra)
    return _next_pane(request, membership, approval, decided, filters)


def _current_query(request: HttpRequest) -> QueryDict:
    """The queue's filters as the page that sent the decision has them (htmx sends its URL)."""
    current = request.htmx.current_url if request.htmx else ""
    return QueryDict(urlsplit(current).query if current else "")


def _next_pane(request: HttpRequest, membership, before: ApprovalRequest, decided: ApprovalRequest,
               filters: dict) -> HttpResponse:
    """After a decision: the next request of the viewer's queue, in its order (the one after the
    decided one, else the first left), said with what was decided; with nothing left, the decided one.
    When the page says it has prefetched that next pane (``prefetched=<its id>``), only the decided note
    comes back, with the event naming the id: the page shows its own copy of the pane below the note.
    ``before``: the request as it was read before the decision; ``decided``: as the decision left it."""
    if not request.htmx:
        messages.success(request, _decided_note(decided))
        return redirect(reverse("approvals", args=[membership.tenant.slug]) + (
            "?" + queue_query(filters) if queue_query(filters) else ""))
    queue = queue_ids_around(viewer=membership, decided=before, **filters)
    left = [pk for pk in queue if pk != decided.pk or decided.is_open]
    after = queue[queue.index(decided.pk) + 1:] if decided.pk in queue else []
    next_id = next((pk for pk in after if pk in left), left[0] if left else None)
    note = {"decided_note": _decided_note(decided), "decided_id": decided.pk, "nothing_left": next_id is None}
    if next_id is not None and next_id == strict_int(request.POST.get("prefetched", ""), 0):
        # The page already holds that pane (fetched by the detail view a moment ago): say only what was
        # decided and which pane to show, so no pane is read or rendered on the click's path.
        response = render(request, "approvals/partials/decided_note.html", note)
        response["HX-Trigger"] = json.dumps({PREFETCHED_PANE_EVENT: {"id": next_id}})
    else:
        shown = _approval(membership, next_id or decided.pk)
        response = render(request, "approvals/partials/detail.html", {**_detail_context(shown), **note})
    response["HX-Replace-Url"] = _queue_url(membership.tenant.slug, next_id or decided.pk, queue_query(filters))
    return response


def _decided_note(approval: ApprovalRequest) -> str:
    what = ("The plan" if approval.kind == ApprovalKind.PLAN else "The question" if approval.kind == ApprovalKind.QUESTION
            else approval.tool)
    if approval.is_open:
        return f"{what} on run #{approval.run.number}: your approval is recorded; it needs {approval.required_approvals} in all."
    verb = "answered" if approval.kind == ApprovalKind.QUESTION and approval.status == "approved" else approval.status
    return f"{what} on run #{approval.run.number} {verb}."


def _pane_after_change(request: HttpRequest, membership, approval_id: int, error: str, status: int, *,
                       edited: dict | None = None, field_errors: dict | None = None, **extra) -> HttpResponse:
    """What the detail pane's forms get back: the pane again, as it now is, with any refusal (htmx);
    without htmx, the queue, the refusal said as a message."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(_queue_url(membership.tenant.slug, approval_id))
    context = {**_detail_context(_approval(membership, approval_id), edited=edited, field_errors=field_errors),
               "error": error, **extra}
    return render(request, "approvals/partials/detail.html", context, status=status)


def _edited_arguments(approval: ApprovalRequest, data) -> tuple[dict | None, str]:
    """What an edit proposes to run instead: a plan's steps, a budget's extension, the schema form's fields, or JSON."""
    if approval.kind == ApprovalKind.PLAN:
        return {"steps": data.getlist("steps")}, ""
    if approval.kind == ApprovalKind.BUDGET:
        return {"extension_usd": data.get("extension_usd", ""), "extension_tokens": data.get("extension_tokens", "")}, ""
    if data.get("form") == "fields" and (spec := tool_for(approval.tenant_id, approval.tool)):
        return arguments_from_fields(spec.json_schema(), data), ""
    return json_problem(data.get("arguments", ""))


def _field_errors(approval: ApprovalRequest, arguments: dict) -> dict[str, str]:
    spec = tool_for(approval.tenant_id, approval.tool)
    return argument_errors(spec, arguments) if spec else {}


@login_required
@require_POST
def assign(request: HttpRequest, tenant_slug: str, approval_id: int) -> HttpResponse:
    """Ask a reviewer or admin of the tenant to decide ("me" for oneself, empty for nobody in particular)."""
    membership = tenant_access(request, tenant_slug, section="approvals")
    approval = _approval(membership, approval_id, detail=False)
    who = request.POST.get("assignee", "").strip()
    error, status = "", 200
    try:
        approval_assign(approval=approval, assignee=request.user.username if who == "me" else who, actor=request.user)
    except DecisionRefused as refused:
        error, status = str(refused), REFUSAL_STATUS[refused.kind]
    return _pane_after_change(request, membership, approval.pk, error, status)


@never_cache  # a new webhook secret is on this page once: no copy in any cache
@login_required
def policies(request: HttpRequest, tenant_slug: str, policy_id: int | None = None) -> HttpResponse:
    """Admin: the tenant's approval policies; create, and with ``policy_id`` change or delete one."""
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    editing = None
    if policy_id is not None:
        editing = ApprovalPolicy.objects.for_tenant(membership.tenant).filter(pk=policy_id).first()
        if editing is None:
            raise Http404("No such policy")
    if request.method == "POST" and request.POST.get("delete") and editing is not None:
        approval_policy_delete(policy=editing, actor=request.user)
        messages.success(request, f"Policy “{editing.name}” deleted. It no longer applies to new requests.")
        return redirect("approval_policies", tenant_slug)
    form = PolicyForm(request.POST or None, instance=editing, tenant=membership.tenant)
    if request.method == "POST" and form.is_valid():
        saved = approval_policy_save(form=form, tenant=membership.tenant, actor=request.user)
        messages.success(request, f"Policy “{getattr(saved, 'name', form.cleaned_data['name'])}” "
                                  f"{'saved' if editing else 'added'}. It applies to requests made from now on.")
        return redirect("approval_policies", tenant_slug)
    return render(request, "approvals/policies.html", {
        "form": form, "editing": editing, "policies": policy_list(tenant=membership.tenant),
        "webhook": ApprovalWebhook.objects.for_tenant(membership.tenant).first(),
        "webhook_secret": revealed(request, tenant=membership.tenant, what="webhook_secret"),
    }, status=422 if request.method == "POST" else 200)


@login_required
@require_POST
def webhook(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """Admin: set or remove the approvals webhook; the signing secret is shown once."""
    membership = tenant_access(request, tenant_slug, section="admin")
    url = request.POST.get("url", "").strip()
    if url:
        try:
            django_forms.URLField(max_length=500, assume_scheme="https").clean(url)
            problem = outbound.url_problem(url)
        except django_forms.ValidationError:
            problem = "Give the webhook a full https:// URL."
        if problem:
            messages.error(request, problem)
            return redirect("approval_policies", tenant_slug)
    hook, secret = approval_webhook_set(tenant=membership.tenant, url=url, actor=request.user)
    if hook:  # the secret goes by the session, not a message (messages may travel in a cookie)
        reveal_once(request, tenant=membership.tenant, what="webhook_secret", value=secret)
    else:
        messages.success(request, "Webhook removed.")
    return redirect("approval_policies", tenant_slug)
