"""The offline demo model's price: a real model's list price (settings.DEMO_PRICED_AS, e.g.
"openai:gpt-4o-mini"), so the finance pages can be tried without a key. Every snapshot says
"simulated" and which model's price it borrowed; the pages and CSVs show that label."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings

from agents.gateway import Tokens, list_price


def demo_price(model: str, tokens: Tokens, at: datetime) -> tuple[Decimal, dict]:
    provider, _, real_model = settings.DEMO_PRICED_AS.partition(":")
    amount, snapshot = list_price(provider, real_model, tokens, at)
    return amount, {**snapshot, "simulated": True, "simulated_as": settings.DEMO_PRICED_AS, "model": f"demo:{model}"}
