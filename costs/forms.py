"""The costs pages' input: the date range and grouping (from a query string) and the budget form."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.contrib.auth import get_user_model

from agents.models import Agent
from costs.models import Budget, BudgetScope, PriceRule, PriceRuleKind
from costs.selectors import GROUPINGS, Window

RANGES = {"today": "Today", "7d": "7 days", "30d": "30 days", "mtd": "Month to date", "custom": "Custom"}
MAX_DAYS = 400


class RangeRefused(ValueError):
    """A range or grouping the page cannot show, in words."""


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeRefused(f"'{name}' must be a date written YYYY-MM-DD (got '{text[:20]}').") from None


def window_from(query, zone: ZoneInfo, now: datetime) -> tuple[Window, dict]:
    """The range a query string asks for (``range``: today, 7d, 30d, mtd, or custom with ``from`` and
    ``to`` dates, both days included) in the tenant's zone, and the choices as the page shows them.
    Raises RangeRefused."""
    chosen = query.get("range") or ("custom" if query.get("from") else "7d")
    grouping = query.get("group_by") or query.get("group") or "agent"
    if chosen not in RANGES:
        raise RangeRefused(f"Unknown range '{chosen[:20]}': use one of {', '.join(RANGES)}.")
    if grouping not in GROUPINGS:
        raise RangeRefused(f"Unknown grouping '{grouping[:20]}': use one of {', '.join(GROUPINGS)}.")
    local = now.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = midnight + timedelta(days=1)
    if chosen == "today":
        start = midnight
    elif chosen == "mtd":
        start = midnight.replace(day=1)
    elif chosen == "custom":
        first = _day(query.get("from", ""), "from")
        last = _day(query.get("to") or local.date().isoformat(), "to")
        if last < first:
            raise RangeRefused("'to' is before 'from': the range must end on or after its first day.")
        if (last - first).days > MAX_DAYS:
            raise RangeRefused(f"A range may be at most {MAX_DAYS} days long.")
        start = datetime.combine(first, time(), zone)
        end = datetime.combine(last + timedelta(days=1), time(), zone)
    else:
        start = midnight - timedelta(days=int(chosen[:-1]) - 1)
    window = Window(start=start, end=end, zone=zone)
    shown_last = (end - timedelta(days=1)).date()
    return window, {"range": chosen, "group_by": grouping, "from": start.date().isoformat(),
                    "to": shown_last.isoformat()}


class BudgetForm(forms.ModelForm):
    thresholds = forms.CharField(initial="50, 80, 100", help_text="Percent of the limit, separated by commas.")

    class Meta:
        model = Budget
        fields = ["name", "scope", "agent", "user", "period", "limit_usd", "limit_tokens", "thresholds", "action",
                  "extension_usd", "extension_tokens"]
        labels = {"extension_usd": "Extension asked, USD", "extension_tokens": "Extension asked, tokens"}
        help_texts = {"extension_usd": "With “ask a person”: what approving grants the run (empty: 20% of the limit).",
                      "extension_tokens": "The same in tokens (empty: 20% of the token limit)."}

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.for_tenant(tenant)
        self.fields["user"].queryset = get_user_model().objects.filter(memberships__tenant=tenant).order_by("username")
        if self.instance.pk:
            self.initial["thresholds"] = ", ".join(str(t) for t in self.instance.thresholds)

    def clean_thresholds(self) -> list[int]:
        return thresholds_from(self.cleaned_data["thresholds"])

    def clean(self):
        data = super().clean()
        for problem_field, problem in budget_problems(data):
            self.add_error(problem_field, problem)
        return data


def thresholds_from(value) -> list[int]:
    parts = value if isinstance(value, list) else [p for p in str(value).replace(" ", "").split(",") if p]
    try:
        numbers = sorted({int(p) for p in parts})
    except (TypeError, ValueError):
        raise forms.ValidationError("Thresholds are whole percents separated by commas, e.g. 50, 80, 100.") from None
    if any(n < 1 or n > 1000 for n in numbers):
        raise forms.ValidationError("Each threshold is a percent from 1 to 1000.")
    return numbers


def budget_problems(data: dict) -> list[tuple[str | None, str]]:
    """What makes a budget unusable, as (field, sentence) pairs."""
    problems = []
    if data.get("limit_usd") is None and data.get("limit_tokens") is None:
        problems.append((None, "Give a limit in USD, in tokens, or both."))
    if data.get("limit_usd") is not None and data["limit_usd"] <= 0:
        problems.append(("limit_usd", "The USD limit must be more than 0."))
    if data.get("limit_tokens") is not None and data["limit_tokens"] <= 0:
        problems.append(("limit_tokens", "The token limit must be more than 0."))
    for name in ("extension_usd", "extension_tokens"):
        if data.get(name) is not None and data[name] <= 0:
            problems.append((name, "An extension is more than 0 (leave it empty for 20% of the limit)."))
    scope = data.get("scope")
    if scope == BudgetScope.AGENT and not data.get("agent"):
        problems.append(("agent", "An agent budget needs its agent."))
    if scope == BudgetScope.USER and not data.get("user"):
        problems.append(("user", "A person's budget needs the person."))
    return problems


class PriceRuleForm(forms.ModelForm):
    class Meta:
        model = PriceRule
        fields = ["provider", "model", "kind", "input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
                  "discount_percent", "effective_from"]
        widgets = {"effective_from": forms.DateInput(attrs={"type": "date"})}
        labels = {"input_mtok": "Input, USD per million tokens", "output_mtok": "Output, USD per million tokens",
                  "cache_read_mtok": "Cache read, USD per million", "cache_write_mtok": "Cache write, USD per million",
                  "discount_percent": "Discount, percent off the list price"}

    def clean(self):
        data = super().clean()
        for problem_field, problem in price_rule_problems(data):
            self.add_error(problem_field, problem)
        return data


def price_rule_problems(data: dict) -> list[tuple[str | None, str]]:
    problems = []
    if data.get("kind") == PriceRuleKind.DISCOUNT:
        percent = data.get("discount_percent")
        if percent is None or not 0 < percent < 100:
            problems.append(("discount_percent", "A discount is a percent more than 0 and less than 100."))
    else:
        for name in ("input_mtok", "output_mtok"):
            if data.get(name) is None:
                problems.append((name, "A rate card needs its input and output rates."))
    for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"):
        if data.get(name) is not None and data[name] < 0:
            problems.append((name, "A rate is not negative."))
    return problems


class RepricingForm(forms.Form):
    first_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="From")
    last_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="To (included)")

    def clean(self):
        data = super().clean()
        if data.get("first_day") and data.get("last_day"):
            if data["last_day"] < data["first_day"]:
                self.add_error("last_day", "The range must end on or after its first day.")
            elif (data["last_day"] - data["first_day"]).days > MAX_DAYS:
                self.add_error("last_day", f"Reprice at most {MAX_DAYS} days at once.")
        return data
