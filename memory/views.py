"""The Memory pages: tabs (me, teams, tenant, agents, to confirm), search as you type, a record's detail with
its versions and their diff, correct / pin / delete / confirm / refuse, export, the capture switch; and the
admin's memory policy and teams. Thin: access, selector, service."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agents.selectors import run_row
from console.access import tenant_access
from console.exports import csv_response
from console.input import strict_int
from console.models import Membership
from memory import selectors, services
from memory.models import MemoryType, Scope, Status, Team
from memory.present import version_diffs
from memory.rules import Refused


def _filters(request: HttpRequest) -> selectors.Filters:
    get = request.GET
    tab = get.get("tab", "me")
    return selectors.Filters(
        tab=tab if tab in selectors.TABS else "me",
        type=get.get("type", "") if get.get("type", "") in MemoryType.values else "",
        scope=get.get("scope", "") if get.get("scope", "") in Scope.values else "",
        agent=strict_int(get.get("agent", "")),
        status=get.get("status", "") if get.get("status", "") in Status.values else "",
        q=get.get("q", "")[:200],
    )


def _record(membership, record_id: int):
    record = selectors.memory_get(membership.tenant, membership.user, membership.role, record_id)
    if record is None:
        raise Http404("No such memory")
    return record


def _changeable(membership, record):
    if not services.can_change(record, user=membership.user, role=membership.role):
        raise PermissionDenied("Only the person it is about, or an admin, may change this memory.")
    return record


def _detail_context(membership, record) -> dict:
    versions = selectors.versions_of(record)
    return {"record": record, "versions": version_diffs(versions), "uses": selectors.uses_of(record),
            "proposals": selectors.proposals_of(record), "owner": selectors.owner_label(record),
            "replaces": selectors.record_it_would_replace(record),
            "can_change": services.can_change(record, user=membership.user, role=membership.role)}


@login_required
def memory_page(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="memory")
    request.section = "memory"
    tenant, user, role = membership.tenant, membership.user, membership.role
    filters = _filters(request)
    records = selectors.memory_list(tenant, user, role, filters)
    if request.htmx and request.htmx.target == "memory-list":  # a keystroke's refresh: the list alone
        return render(request, "memory/memory.html#list", {"records": records, "filters": filters})
    context = {"records": records, "filters": filters, "tabs": selectors.tabs_for(role), "types": MemoryType.choices,
               "scopes": Scope.choices, "statuses": Status.choices,
               "to_confirm": selectors.to_confirm_count(tenant, user, role),
               "capture": selectors.captures_for(tenant, user), "title": "Memory",
               "agents": selectors.agents_of_tenant(tenant)}
    if selected := strict_int(request.GET.get("id", "")):
        record = selectors.memory_get(tenant, user, role, selected)
        if record is not None:
            context.update(_detail_context(membership, record))
    return render(request, "memory/memory.html", context)


@login_required
def memory_badge(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="memory")
    return render(request, "memory/memory.html#badge", {
        "to_confirm": selectors.to_confirm_count(membership.tenant, membership.user, membership.role)})


@login_required
def run_memories(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """The "Memories used" panel of a run (every step) or of one step (``?step=``, the approval detail's): the
    run page, the approval pane and the run page's live update all render it from here."""
    membership = tenant_access(request, tenant_slug, section="memory")
    run = run_row(tenant=membership.tenant, number=run_number)
    if run is None:
        raise Http404("No such run")
    step = strict_int(request.GET.get("step", ""))
    if request.GET.get("step", "") and (step is None or step < 0):
        return HttpResponse("The step is a number, like 3.", status=400, content_type="text/plain")
    steps = selectors.step_memories(membership.tenant, membership.user, membership.role, run, step=step)
    return render(request, "memory/partials/step_memories.html", {"run": run, "steps": steps, "one_step": step})


@login_required
def memory_detail(request: HttpRequest, tenant_slug: str, record_id: int) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="memory")
    request.section = "memory"
    record = _record(membership, record_id)
    if not request.htmx:
        return redirect(f"{request.path.rsplit('/', 2)[0]}/?id={record.pk}&tab={_tab_of(membership, record)}")
    return render(request, "memory/memory.html#detail", _detail_context(membership, record))


def _tab_of(membership, record) -> str:
    if record.status == Status.PROPOSED:
        return "confirm"
    return {"user": "me", "team": "teams", "tenant": "tenant", "agent": "agents"}[record.scope]


def _after_change(request, membership, record, note: str) -> HttpResponse:
    if request.htmx:
        response = render(request, "memory/memory.html#detail", {**_detail_context(membership, record), "note": note})
        response["HX-Trigger"] = "memory-changed"
        return response
    messages.success(request, note)
    return redirect(f"/t/{membership.tenant.slug}/memory/?id={record.pk}&tab={_tab_of(membership, record)}")


def _refused(request, membership, record, refusal: Refused, action: str) -> HttpResponse:
    if request.htmx:  # the form that was refused stays open, to fix
        return render(request, "memory/memory.html#detail",
                      {**_detail_context(membership, record), "error": str(refusal), "refused": action}, status=422)
    messages.error(request, str(refusal))
    return redirect(f"/t/{membership.tenant.slug}/memory/?id={record.pk}")


@login_required
@require_POST
def memory_change(request: HttpRequest, tenant_slug: str, record_id: int, action: str) -> HttpResponse:
    """correct, pin, unpin, delete (with confirm=yes), confirm (optionally edited), refuse."""
    membership = tenant_access(request, tenant_slug, section="memory")
    record = _changeable(membership, _record(membership, record_id))
    actor, post = request.user, request.POST
    try:
        if action == "correct":
            record = services.memory_correct(record, actor=actor, content=post.get("content", ""),
                                             type=post.get("type") or None, reason=post.get("reason", ""))
            note = f"Saved as version {record.version}."
        elif action in ("pin", "unpin"):
            record = services.memory_pin(record, actor=actor, pinned=action == "pin")
            note = "Pinned: it ranks first when relevant." if record.pinned else "Unpinned."
        elif action == "delete":
            if post.get("confirm") != "yes":
                raise Refused("Tick “Yes, delete it everywhere” to delete this memory.")
            record = services.memory_delete(record, actor=actor)
            note = f"Memory #{record.pk} deleted: its content is gone everywhere."
        elif action == "confirm":
            content = post.get("content")
            record = services.memory_confirm(record, actor=actor, content=content if content is not None else None)
            note = "Confirmed: agents may use it now."
        elif action == "refuse":
            record = services.memory_refuse(record, actor=actor)
            note = "Refused: it will never be used, and its content is gone."
        else:
            raise Http404("No such action")
    except Refused as refusal:
        return _refused(request, membership, record, refusal, action)
    return _after_change(request, membership, record, note)


@login_required
@require_POST
def memory_capture(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="memory")
    capture = request.POST.get("capture") == "on"
    services.capture_set(tenant=membership.tenant, user=request.user, capture=capture)
    messages.success(request, "Agents may propose new memories about you." if capture else
                     "Agents will not remember new things about you.")
    return redirect("memory", tenant_slug)


@login_required
def memory_export(request: HttpRequest, tenant_slug: str, fmt: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="memory")
    if fmt not in ("json", "csv"):
        raise Http404("Export as .json or .csv")
    rows = selectors.export_rows(membership.tenant, membership.user, membership.role)
    filename = f"memories-{membership.tenant.slug}"
    if fmt == "csv":
        fields = list(selectors.EXPORT_FIELDS)
        return csv_response(request, f"{filename}.csv", [fields, *([row.get(k) for k in fields] for row in rows)])
    response = HttpResponse(json.dumps(rows, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    return response


# --- Admin: the tenant's memory policy and teams ----------------------------------------------------


@login_required
def memory_admin(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = tenant_access(request, tenant_slug, section="admin")
    request.section = "admin"
    tenant = membership.tenant
    from agents.models import Agent

    error, status = "", 200
    if request.method == "POST":
        post = request.POST
        try:
            if post.get("form") == "policy":
                retention = {}
                for type_ in MemoryType.values:
                    raw = post.get(f"retention_{type_}", "").strip()
                    if raw:
                        days = strict_int(raw)
                        if days is None:
                            raise Refused(f"Retention for {type_} must be a whole number of days.")
                        retention[type_] = days
                services.policy_save(tenant=tenant, actor=request.user, confirm_types=post.getlist("confirm_types"),
                                     confirm_scopes=post.getlist("confirm_scopes"), retention_days=retention,
                                     capture_off_agents=[i for a in post.getlist("capture_off")
                                                         if (i := strict_int(a)) is not None])
                messages.success(request, "Memory policy saved.")
            elif post.get("form") == "team":
                team = None
                if (team_id := strict_int(post.get("team", ""))) is not None:
                    team = Team.objects.for_tenant(tenant).filter(pk=team_id).first()
                    if team is None:
                        raise Http404("No such team")
                members = [i for u in post.getlist("members") if (i := strict_int(u)) is not None]
                if team is not None and post.get("delete") == "1":
                    services.team_delete(tenant=tenant, actor=request.user, team=team)
                    messages.success(request, f"Team {team.name} deleted, with its memories.")
                else:
                    saved = services.team_save(tenant=tenant, actor=request.user, name=post.get("name", ""),
                                               member_ids=members, team=team)
                    messages.success(request, f"Team {saved.name} saved.")
            return redirect("memory_admin", tenant_slug)
        except Refused as refusal:
            error, status = str(refusal), 422
    policy = selectors.policy_of(tenant)
    return render(request, "memory/admin.html", {
        "policy": policy, "types": MemoryType.choices, "scopes": Scope.choices, "error": error,
        "retention": [(value, label, policy.retention_days.get(value, "")) for value, label in MemoryType.choices],
        "agents": Agent.objects.for_tenant(tenant).order_by("name"), "teams": selectors.teams_of_tenant(tenant),
        "people": Membership.objects.for_tenant(tenant).select_related("user").order_by("user__username"),
        "title": "Memory policy",
    }, status=status)
