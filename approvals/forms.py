from django import forms

from agents.models import Agent
from agents.tools import REGISTRY
from approvals.models import ApprovalPolicy
from approvals.policy import EXPIRY_OUTCOMES, OPERATORS, condition_problem


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
        self.tenant = tenant
        self.fields["agent"].queryset = Agent.objects.for_tenant(tenant)
        self.fields["agent"].empty_label = "(any agent)"
        self.fields["tool"] = forms.ChoiceField(required=False, choices=[("", "(any tool)")] + [
            (name, f"{name} (risk {spec.risk})") for name, spec in sorted(REGISTRY.items())])
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
                condition["value"] = float(condition["value"])
        self.instance.condition = condition
        if cleaned.get("expire_minutes") is not None and cleaned.get("sla_minutes") is not None \
                and cleaned["expire_minutes"] < cleaned["sla_minutes"]:
            self.add_error("expire_minutes", "Expiry comes after the due time: make it at least the due minutes.")
        return cleaned
