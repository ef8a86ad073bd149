"""How values read on every page: JSON formatted for people, money in one format."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """Arguments, results, data: indented JSON with the text as written (no Python repr, no \\u escapes)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def money(value) -> str:
    """Every amount of money the console shows: US dollars, thousands separated, four decimals
    (a model call costs fractions of a cent)."""
    try:
        amount = Decimal(str(value if value is not None else 0))
    except (InvalidOperation, ValueError):
        return str(value)
    return f"-${-amount:,.4f}" if amount < 0 else f"${amount:,.4f}"


@register.filter
def status_label(value) -> str:
    """A run or request status as words: waiting_for_human → waiting for human."""
    return str(value or "").replace("_", " ")


EVENT_KINDS = {"status": "status", "model": "model", "usage": "model", "tool": "tool", "plan": "plan",
               "approval": "person", "question": "person", "instruction": "person", "control": "person", "run": "status"}


@register.filter
def event_kind(event_type: str) -> str:
    """The timeline's filter groups an event falls in: status, model, tool, plan, person, other."""
    return EVENT_KINDS.get(str(event_type).split(".", 1)[0], "other")


@register.filter
def plain_or_json(value) -> str:
    """Text as it is; anything else (numbers, lists, objects, nothing) as JSON."""
    return value if isinstance(value, str) else pretty_json(value)


@register.filter
def equals(value, other) -> bool:
    return bool(value) and value == other


@register.simple_tag
def page_url(filters: dict, cursor_name: str, cursor) -> str:
    """A keyset list's next page: its filters as set (true flags as 1, empty ones left out) and the cursor."""
    from urllib.parse import urlencode

    params = {key: "1" if value is True else value for key, value in filters.items() if value not in ("", None, False)}
    return "?" + urlencode({**params, cursor_name: cursor})
