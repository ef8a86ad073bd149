"""The Costs pages (finance and admins): the dashboard, drill-downs to runs and a run's calls, CSV of
every view, the streamed ledger export, budgets."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from agents.models import Run
from console.access import tenant_access
from console.exports import csv_response
from console.input import strict_int
from console.roles import can_open
from costs import exports
from costs.budgets import tenant_zone
from costs.forms import (
    RANGES,
    BudgetForm,
    PriceRuleForm,
    RangeRefused,
    RepricingForm,
    window_from,
)
from costs.models import Budget, BudgetAlert, PriceRule, Reconciliation, RepricingJob
from costs.reconciliation import MAX_BYTES, ExportRefused, reconcile
from costs.selectors import (
    GROUPING_LABELS,
    dashboard,
    ledger_export,
    run_calls,
    runs_page,
)
from costs.services import (
    budget_delete,
    budget_save,
    cost_timezone_set,
    RepricingRefused,
    price_rule_delete,
    price_rule_save,
    repricing_start,
)

SECTION = "costs"


def _open(request, tenant_slug: str):
    membership = tenant_access(request, tenant_slug, section=SECTION)
    request.section = SECTION
    return membership


def _window(request, tenant):
    return window_from(request.GET, tenant_zone(tenant.pk), timezone.now())


def _refused(request, error: RangeRefused) -> HttpResponse:
    return render(request, "costs/refused.html", {"message": str(error)}, status=400)


def refusing_bad_ranges(view):
    """A range, grouping or key the page cannot show is answered 400 with the reason, never a 500."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except RangeRefused as error:
            return _refused(request, error)

    return wrapped


@login_required
@refusing_bad_ranges
def costs_dashboard(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    membership = _open(request, tenant_slug)
    window, chosen = _window(request, membership.tenant)
    board = dashboard(membership.tenant, window, chosen["group_by"])
    export = request.GET.get("export")
    label = GROUPING_LABELS[chosen["group_by"]]
    if export == "groups":
        return csv_response(request, f"costs-by-{chosen['group_by']}-{chosen['from']}-{chosen['to']}.csv",
                                    exports.group_rows(board, label))
    if export == "series":
        return csv_response(request, f"costs-over-time-{chosen['from']}-{chosen['to']}.csv", exports.series_rows(board))
    query = urlencode(chosen)
    template = "costs/dashboard.html#panels" if request.htmx and request.GET.get("panels") else "costs/dashboard.html"
    return render(request, template, {
        "board": board, "chosen": chosen, "query": query, "ranges": RANGES, "groupings": GROUPING_LABELS,
        "grouping_label": label, "zone": window.zone.key, "days_approximate": window.days_approximate,
        "alerts": BudgetAlert.objects.for_tenant(membership.tenant).select_related("budget")[:5],
    })


@login_required
@refusing_bad_ranges
def costs_runs(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """The runs behind a group's spend (or all of the range's), a page at a time."""
    membership = _open(request, tenant_slug)
    window, chosen = _window(request, membership.tenant)
    value = request.GET.get("value")
    grouping = chosen["group_by"] if value is not None else None
    if grouping in ("agent", "user", "agent_version") and not _valid_key(grouping, value):
        raise RangeRefused(f"'{value[:20]}' is not a {GROUPING_LABELS[grouping].lower()} id.")
    before = strict_int(request.GET.get("before", ""))
    page, next_cursor = runs_page(membership.tenant, window, grouping, value, before=before)
    if request.GET.get("export") == "csv":
        return csv_response(request, f"costs-runs-{chosen['from']}-{chosen['to']}.csv", exports.run_rows(page))
    query = urlencode({**chosen, **({"value": value} if value is not None else {})})
    return render(request, "costs/runs.html", {
        "page": page, "next_cursor": next_cursor, "chosen": chosen, "query": query, "value": value,
        "grouping_label": GROUPING_LABELS[chosen["group_by"]], "page_total": sum((r["amount_usd"] or 0) for r in page),
    })


def _valid_key(grouping: str, value: str) -> bool:
    if grouping == "agent_version":
        agent, _, version = value.partition(":")
        return strict_int(agent) is not None and strict_int(version) is not None
    return strict_int(value) is not None


@login_required
def costs_run(request: HttpRequest, tenant_slug: str, run_number: int) -> HttpResponse:
    """A run's priced calls, each with the price it was charged at."""
    membership = _open(request, tenant_slug)
    run = Run.objects.for_tenant(membership.tenant).filter(number=run_number).select_related("agent").first()
    if run is None:
        raise Http404("No such run")
    calls = list(run_calls(membership.tenant, run.pk))
    if request.GET.get("export") == "csv":
        return csv_response(request, f"run-{run.number}-calls.csv", exports.ledger_rows(calls))
    return render(request, "costs/run.html", {
        "run": run, "calls": calls, "total": sum((c.amount_usd or 0) for c in calls),
        "unpriced": sum(1 for c in calls if not c.priced),
    })


@login_required
@refusing_bad_ranges
def costs_ledger_csv(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """Every current ledger row of the range with every price snapshot column, streamed."""
    membership = _open(request, tenant_slug)
    window, chosen = _window(request, membership.tenant)
    return csv_response(request, f"cost-ledger-{chosen['from']}-{chosen['to']}.csv",
                                exports.ledger_rows(ledger_export(membership.tenant, window)))


@login_required
def costs_budgets(request: HttpRequest, tenant_slug: str, budget_id: int | None = None) -> HttpResponse:
    membership = _open(request, tenant_slug)
    tenant = membership.tenant
    editing = get_object_or_404(Budget.objects.for_tenant(tenant), pk=budget_id) if budget_id else None
    form = BudgetForm(request.POST or None, instance=editing, tenant=tenant)
    if request.method == "POST" and request.POST.get("form") == "timezone":
        zone = request.POST.get("timezone", "")
        if zone not in _zones():
            messages.error(request, f"'{zone[:40]}' is not a timezone Proctor knows (e.g. Europe/Paris).")
        else:
            cost_timezone_set(tenant=tenant, actor=request.user, zone=zone)
            messages.success(request, f"Budget periods are now counted in {zone}.")
        return redirect("costs_budgets", tenant.slug)
    if request.method == "POST" and form.is_valid():
        budget = budget_save(tenant=tenant, actor=request.user, budget=form.save(commit=False))
        messages.success(request, f"Budget “{budget.name}” saved.")
        return redirect("costs_budgets", tenant.slug)
    return render(request, "costs/budgets.html", {
        "form": form, "editing": editing, "budgets": Budget.objects.for_tenant(tenant).select_related("agent", "user"),
        "alerts": BudgetAlert.objects.for_tenant(tenant).select_related("budget")[:50],
        "zone": tenant_zone(tenant.pk).key, "zones": sorted(_zones()),
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def costs_budget_delete(request: HttpRequest, tenant_slug: str, budget_id: int) -> HttpResponse:
    membership = _open(request, tenant_slug)
    budget = get_object_or_404(Budget.objects.for_tenant(membership.tenant), pk=budget_id)
    budget_delete(tenant=membership.tenant, actor=request.user, budget=budget)
    messages.success(request, f"Budget “{budget.name}” deleted.")
    return redirect("costs_budgets", membership.tenant.slug)


def _zones() -> set[str]:
    from zoneinfo import available_timezones

    return available_timezones()



@login_required
def costs_pricing(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    """Price rules, and repricing a range with them (admins change; finance reads)."""
    membership = _open(request, tenant_slug)
    tenant = membership.tenant
    rule_form = PriceRuleForm(request.POST if request.POST.get("form") == "rule" else None)
    reprice_form = RepricingForm(request.POST if request.POST.get("form") == "reprice" else None)
    if request.method == "POST":
        tenant_access(request, tenant_slug, section="admin")  # admins change prices; finance reads them
        if rule_form.is_bound and rule_form.is_valid():
            rule = price_rule_save(tenant=tenant, actor=request.user, rule=rule_form.save(commit=False))
            messages.success(request, f"Price rule for {rule.provider}:{rule.model} saved; reprice a range to apply it.")
            return redirect("costs_pricing", tenant.slug)
        if reprice_form.is_bound and reprice_form.is_valid():
            try:
                job = repricing_start(tenant=tenant, actor=request.user, **reprice_form.cleaned_data)
            except RepricingRefused as refused:
                reprice_form.add_error(None, str(refused))
            else:
                return redirect("costs_repricing", tenant.slug, job.pk)
    return render(request, "costs/pricing.html", {
        "rule_form": rule_form, "reprice_form": reprice_form, "is_admin": can_open(membership.role, "admin"),
        "rules": PriceRule.objects.for_tenant(tenant), "jobs": RepricingJob.objects.for_tenant(tenant)[:20],
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def costs_price_rule_delete(request: HttpRequest, tenant_slug: str, rule_id: int) -> HttpResponse:
    membership = _open(request, tenant_slug)
    rule = get_object_or_404(PriceRule.objects.for_tenant(membership.tenant), pk=rule_id)
    tenant_access(request, tenant_slug, section="admin")
    price_rule_delete(tenant=membership.tenant, actor=request.user, rule=rule)
    messages.success(request, f"Price rule for {rule.provider}:{rule.model} deleted.")
    return redirect("costs_pricing", membership.tenant.slug)


@login_required
def costs_repricing(request: HttpRequest, tenant_slug: str, job_id: int) -> HttpResponse:
    """A repricing job: its progress while it runs, then the diff per day and model (?export=csv)."""
    membership = _open(request, tenant_slug)
    job = get_object_or_404(RepricingJob.objects.for_tenant(membership.tenant), pk=job_id)
    if request.GET.get("export") == "csv":
        return csv_response(request, f"repricing-{job.pk}-diff.csv", exports.diff_rows(job.diff))
    template = "costs/repricing.html#progress" if request.htmx else "costs/repricing.html"
    return render(request, template, {"job": job})


@login_required
def costs_reconciliation(request: HttpRequest, tenant_slug: str, reconciliation_id: int | None = None) -> HttpResponse:
    """Upload a provider's daily cost export; see ours beside theirs per day and model (?export=csv)."""
    membership = _open(request, tenant_slug)
    tenant = membership.tenant
    shown = (get_object_or_404(Reconciliation.objects.for_tenant(tenant), pk=reconciliation_id)
             if reconciliation_id else None)
    if shown is not None and request.GET.get("export") == "csv":
        return csv_response(request, f"reconciliation-{shown.pk}.csv", exports.reconciliation_rows(shown.lines))
    problem = ""
    if request.method == "POST":
        provider, upload = request.POST.get("provider", ""), request.FILES.get("export")
        if provider not in RECONCILED_PROVIDERS:
            problem = "Choose the provider whose export this is (OpenAI or Anthropic)."
        elif upload is None:
            problem = "Choose the CSV file to upload."
        else:
            try:
                done = reconcile(tenant=tenant, provider=provider, content=upload.read(MAX_BYTES + 1),
                                 filename=upload.name, actor=request.user)
                return redirect("costs_reconciliation_shown", tenant.slug, done.pk)
            except ExportRefused as error:
                problem = str(error)
    return render(request, "costs/reconciliation.html", {
        "shown": shown, "problem": problem, "providers": RECONCILED_PROVIDERS,
        "earlier": Reconciliation.objects.for_tenant(tenant).only("pk", "provider", "filename", "flagged", "at")[:20],
    }, status=400 if problem else 200)


RECONCILED_PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic"}
