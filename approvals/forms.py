import json

from pydantic import ValidationError

from django import forms

from agents.engine import ASK_TOOL, PLAN_TOOL
from agents.models import Agent
from agents.tools import tenant_tools
from approvals.models import ApprovalPolicy
from approvals.policy import BUDGET_TOOL, EXPIRY_OUTCOMES, OPERATORS, condition_number, condition_problem
from console.input import InputRefused, json_load, strict_int, strict_number


class PolicyForm(forms.ModelForm):
    """A rule, with its argument condition as three plain fields."""

    condition_argument = forms.CharField(required=False, max_length=100, label="If argument")
    condition_op = forms.ChoiceField(required=False, label="is", choices=[("", "(no condition)")] + [
        (op, symbol) for op, (symbol, _) in OPERATORS.items()])
    condition_value = forms.CharField(required=False, max_length=300, label="value")

    class Meta:
        model = ApprovalPolicy
        fields = ["name", "agent", "tool", "min_risk", "required_approvals", "allow_self_approval", "sla_minutes",
                  "expire_minutes", "expiry_outcome", "escalate_to_role", "enabled"]
        labels = {"min_risk": "Applies from risk", "required_approvals": "Approvals needed (0 = none)",
                  "sla_minutes": "Due after (minutes)", "expire_minutes": "Expires after (minutes)",
                  "allow_self_approval": "The run's requester may approve"}

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.for_tenant(tenant)
        self.fields["agent"].empty_label = "(any agent)"
        self.fields["tool"] = forms.ChoiceField(required=False, choices=[
            ("", "(any tool)"), (PLAN_TOOL, f"{PLAN_TOOL} (plans of agents that require plan approval)"),
            (BUDGET_TOOL, f"{BUDGET_TOOL} (extensions a budget that asks to continue asks for: who decides, by "
                          f"when; one approval grants it)")] + [
            (name, f"{name} (questions the agent asks)" if name == ASK_TOOL else f"{name} (risk {spec.risk})")
            for name, spec in sorted(tenant_tools(tenant).items())])
        self.fields["expiry_outcome"] = forms.ChoiceField(choices=[(o, o.replace("_", " ")) for o in EXPIRY_OUTCOMES])
        self.fields["escalate_to_role"] = forms.ChoiceField(choices=[("admin", "admins"), ("reviewer", "reviewers")])
        self.fields["min_risk"].widget.attrs.update(min=0, max=4)
        self.fields["required_approvals"].widget.attrs.update(min=0, max=5)
        if self.instance.pk and self.instance.condition:
            condition = self.instance.condition
            self.initial.update(condition_argument=condition.get("argument", ""), condition_op=condition.get("op", ""),
                                condition_value=condition.get("value", ""))

    def clean_min_risk(self):
        value = self.cleaned_data["min_risk"]
        if value > 4:
            raise forms.ValidationError("Risk levels go from 0 to 4.")
        return value

    def clean_required_approvals(self):
        value = self.cleaned_data["required_approvals"]
        if value > 5:
            raise forms.ValidationError("At most 5 distinct reviewers.")
        return value

    def clean(self):
        cleaned = super().clean()
        op = cleaned.get("condition_op")
        condition = {}
        if op:
            value = cleaned.get("condition_value", "")
            condition = {"argument": cleaned.get("condition_argument", "").strip(), "op": op,
                         "value": value if op in {"domain_not_in", "eq"} else value.strip()}
            if problem := condition_problem(condition):
                self.add_error("condition_value", problem)
            elif op in {"gt", "gte", "lt"}:
                condition["value"] = condition_number(condition["value"])
        self.instance.condition = condition
        if cleaned.get("expire_minutes") is not None and cleaned.get("sla_minutes") is not None \
                and cleaned["expire_minutes"] < cleaned["sla_minutes"]:
            self.add_error("expire_minutes", "Expiry comes after the due time: make it at least the due minutes.")
        return cleaned


# --- Edit-and-approve: a form built from the tool's JSON schema ---------------------------------------

FIELD_PREFIX = "arg:"


def _schema_type(prop: dict) -> tuple[str, dict]:
    """The property's JSON type ("string", "integer", ...) and the schema that carries it (pydantic
    writes optional and Decimal fields as anyOf)."""
    for option in [prop, *prop.get("anyOf", [])]:
        if option.get("type") and option["type"] != "null":
            return option["type"], option
    return "json", prop


def schema_fields(schema: dict, values: dict) -> list[dict]:
    """One field per property, in the schema's order, with the widget that fits its type."""
    required = set(schema.get("required", []))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        kind, typed = _schema_type(prop)
        value = values.get(name, prop.get("default", ""))
        if kind == "array" and typed.get("items", {}).get("type") == "string":
            widget, shown = "lines", "\n".join(str(v) for v in value or [])
        elif kind == "string" and typed.get("enum"):
            widget, shown = "select", value
        elif kind == "string":
            long = typed.get("maxLength", 0) > 300 or "\n" in str(value or "")
            widget, shown = "textarea" if long else "text", "" if value is None else value
        elif kind in ("integer", "number"):
            widget, shown = "number", "" if value is None else value
        elif kind == "boolean":
            widget, shown = "checkbox", bool(value)
        else:
            widget, shown = "json", json.dumps(value, ensure_ascii=False) if value not in ("", None) else ""
        fields.append({"name": name, "input": FIELD_PREFIX + name, "label": prop.get("title", name),
                       "help": prop.get("description", ""), "widget": widget, "value": shown,
                       "required": name in required, "choices": typed.get("enum", []),
                       "step": "1" if kind == "integer" else "any"})
    return fields


def arguments_from_fields(schema: dict, data) -> dict:
    """The arguments a schema form's POST describes. Values are converted to the property's type
    where they can be (numbers written plainly in ASCII digits, JSON read strictly: console.input);
    what cannot is passed on as typed, so the schema check says what is wrong."""
    required = set(schema.get("required", []))
    arguments = {}
    for name, prop in schema.get("properties", {}).items():
        kind, _ = _schema_type(prop)
        raw = data.get(FIELD_PREFIX + name)
        if kind == "boolean":
            arguments[name] = raw is not None
            continue
        raw = (raw or "").strip() if kind != "string" else (raw or "")
        if raw == "" and name not in required:
            continue
        if kind == "array":
            arguments[name] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif kind == "integer":
            arguments[name] = strict_int(raw, raw)
        elif kind == "number":
            number = strict_int(raw)
            number = strict_number(raw) if number is None else number
            arguments[name] = raw if number is None else number
        elif kind == "json":
            try:
                arguments[name] = json_load(raw)
            except InputRefused:
                arguments[name] = raw
        else:
            arguments[name] = raw.replace("\r\n", "\n")
    return arguments


def argument_errors(spec, arguments: dict) -> dict[str, str]:
    """What is wrong with edited arguments, by argument (the field to show it beside); problems with the
    whole object under ""."""
    try:
        spec.arguments.model_validate(arguments)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for item in exc.errors():
            name = str(item["loc"][0]) if item["loc"] else ""
            errors.setdefault(name, item["msg"])
        return errors
    return {}


def json_problem(text: str) -> tuple[dict | None, str]:
    """The JSON object a reviewer typed, or where it goes wrong, in words ("Line 3, column 5: ..."); held
    to the same rules as every input (console.input: no NUL, bounded depth, finite numbers)."""
    must = "The arguments must be a JSON object, e.g. {\"to\": \"dana@acme.example\"}."
    try:
        value = json_load(text, where="The edit")
    except InputRefused as refused:
        return None, f"{refused.position}. {must}" if refused.position else f"{refused} {must}"
    if not isinstance(value, dict):
        return None, must
    return value, ""
