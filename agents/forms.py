from django import forms

from agents.models import Agent
from agents.services import MAX_GOAL_CHARS


class StartRunForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), empty_label=None)
    goal = forms.CharField(widget=forms.Textarea(attrs={
        "rows": 3, "placeholder": "e.g. Prepare the renewal plan for account ACME-042 and email it to its success manager"}),
        max_length=MAX_GOAL_CHARS, strip=True)

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = Agent.objects.for_tenant(tenant)
