from django import forms

from console.models import Role


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True, help_text="What uses this token, e.g. 'CI pipeline'.")
