from django import forms
from django.conf import settings


class ServerForm(forms.Form):
    name = forms.SlugField(max_length=40, help_text="Its tools are named mcp:<name>.<tool>.")
    url = forms.CharField(max_length=500, required=False, label="URL (streamable HTTP)",
                          widget=forms.URLInput(attrs={"placeholder": "https://mcp.example.com/mcp", "size": 50}))
    bearer = forms.CharField(max_length=2000, required=False, label="Bearer token",
                             widget=forms.PasswordInput(render_value=False),
                             help_text="Stored encrypted; never shown again.")
    headers = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text="Other headers, one 'Name: value' a line; stored encrypted, never shown again.")
    stdio_name = forms.ChoiceField(required=False, label="Or a stdio server")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stdio_name"].choices = [("", "(none: use the URL)")] + [
            (name, name) for name in sorted(settings.MCP_STDIO_SERVERS)]

    def clean(self):
        data = super().clean()
        if not data.get("url") and not data.get("stdio_name"):
            raise forms.ValidationError("Give the server's URL, or choose a stdio server.")
        headers = {}
        for line in (data.get("headers") or "").splitlines():
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise forms.ValidationError(f"Write each header as 'Name: value' (not '{line[:40]}').")
            headers[name.strip()] = value.strip()
        data["header_map"] = headers
        return data
