"""What a model call cost, told to the usage hooks (costs' ledger): a step's attempts, and model calls made
for a run outside its steps (memory's classifier asking about a proposal), priced alike."""

from __future__ import annotations

from django.db import transaction

from agents.gateway import Attempt
from agents.hooks import Usage, usage_recorded
from agents.models import Run
from agents.services.transitions import step_info


def attempt_usage(attempt: Attempt, number: int, *, kind: str = "model", call_id: str = "") -> Usage:
    """One gateway attempt as the usage hooks hear it, with the price snapshot the gateway took."""
    return Usage(kind=kind, name=attempt.model, status=attempt.status, provider=attempt.provider, attempt=number,
                 input_tokens=attempt.input_tokens, output_tokens=attempt.output_tokens,
                 cached_tokens=attempt.cached_tokens, cost_usd=attempt.cost_usd, price=attempt.price,
                 latency_ms=attempt.latency_ms, cache_write_tokens=attempt.cache_write_tokens,
                 reasoning_tokens=attempt.reasoning_tokens, call_id=call_id)


def run_usage_record(*, run: Run, step: int, attempts: list[Attempt], kind: str, call_id: str) -> None:
    """Model attempts made for ``run`` outside its steps, attributed like its own calls (tenant, requester,
    agent and version) and told to the usage hooks in a transaction of their own. The run is not locked
    and has no write set, so a hook writes at once (costs: the ledger row, its rollup, the budgets'
    alerts). ``call_id`` names what the call was made for, so the same call told twice (the caller's task
    taken again) is recorded once."""
    info = step_info(run, step)
    with transaction.atomic():
        for number, attempt in enumerate(attempts, start=1):
            usage_recorded(info, attempt_usage(attempt, number, kind=kind, call_id=call_id), None)
