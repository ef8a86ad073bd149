from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from console.models import ALL_SCOPES, Role, Scope


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True, help_text="What uses this token, e.g. 'CI pipeline'.")
    scopes = forms.MultipleChoiceField(
        choices=[(scope.value, f"{scope.value}: {scope.label}") for scope in Scope], initial=list(ALL_SCOPES),
        widget=forms.CheckboxSelectMultiple, error_messages={"required": "Choose at least one scope."},
        help_text="What the token may do; it acts as you, so never more than your role allows.")


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, help_text="They get a link that works once, for 7 days.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class NewAccountForm(UserCreationForm):
    """The accept page's account for a new person: a username and a password (Django's validators)."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)
