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
        self.fields["agent"].queryset = Agent.objects.for_tenant(tenant).filter(enabled=True)


class AgentForm(forms.Form):
    """An agent's configuration as an admin edits it; the services' own checks (agent_config_problems) give the
    field errors, so the API and this form refuse the same things in the same words."""

    name = forms.CharField(max_length=100)
    slug = forms.SlugField(max_length=60, required=False, help_text="Its short name in URLs and the API; from the "
                                                                   "name when empty. Cannot change later.")
    description = forms.CharField(max_length=300, required=False)
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), max_length=50_000)
    model = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"list": "models"}),
                            help_text="<provider>:<model>, from the providers configured here.")
    fallback_models = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                      help_text="Tried in this order when the model fails: one per line.")
    tools = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    max_steps = forms.IntegerField()
    max_tokens = forms.IntegerField()
    max_cost_usd = forms.DecimalField(max_digits=10, decimal_places=4, label="Max cost (USD)")
    max_seconds = forms.IntegerField()
    plan_mode = forms.BooleanField(required=False, help_text="It proposes a plan before acting.")
    plan_approval = forms.BooleanField(required=False, help_text="A person approves the plan first (plan mode).")
    memory_recall = forms.BooleanField(required=False, label="Recall memories",
                                       help_text="What it may know of people and the tenant is offered as context.")
    memory_remember = forms.BooleanField(required=False, label="Remember",
                                         help_text="It may propose memories for later runs.")

    def __init__(self, *args, tool_names, creating: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tools"].choices = [(name, name) for name in tool_names]
        if not creating:
            del self.fields["slug"]

    @classmethod
    def initial_for(cls, agent) -> dict:
        return {**{name: getattr(agent, name) for name in ("name", "description", "instructions", "model", "tools",
                                                          "max_steps", "max_tokens", "max_cost_usd", "max_seconds",
                                                          "plan_mode", "plan_approval")},
                "fallback_models": "\n".join(agent.fallback_models),
                "memory_recall": agent.memory.get("recall", True), "memory_remember": agent.memory.get("remember", True)}

    def values(self) -> dict:
        """The cleaned fields as the services take them."""
        data = dict(self.cleaned_data)
        data["fallback_models"] = [line.strip() for line in data["fallback_models"].splitlines() if line.strip()]
        data["memory"] = {"recall": data.pop("memory_recall"), "remember": data.pop("memory_remember")}
        data.pop("slug", None)
        return data

    def add_problems(self, problems: dict[str, str]) -> None:
        for field, problem in problems.items():
            if field == "memory":
                field = "memory_recall"
            self.add_error(field if field in self.fields else None, problem)
