"""A tool call's arguments as a person reads them: the tool's own preview (an email as To / Subject /
body) when it declares one, and the arguments as JSON."""

from __future__ import annotations

from django import template

from agents.tools import REGISTRY
from console.templatetags.present import pretty_json

register = template.Library()


@register.inclusion_tag("console/partials/tool_arguments.html")
def tool_arguments(tool: str, arguments, *, open_json: bool = False) -> dict:
    spec = REGISTRY.get(tool or "")
    preview = spec.preview if spec is not None and isinstance(arguments, dict) else ""
    return {"tool": tool, "arguments": arguments, "preview": preview, "json": pretty_json(arguments),
            "open_json": open_json}
