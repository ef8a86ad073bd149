from django import forms

from webhooks.models import ALL_EVENTS, RunEvent


class WebhookForm(forms.Form):
    url = forms.CharField(max_length=500, label="URL", widget=forms.URLInput(attrs={
        "placeholder": "https://hooks.example.com/proctor", "size": 50}))
    events = forms.MultipleChoiceField(choices=RunEvent.choices, initial=list(ALL_EVENTS),
                                       widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one event."})
